import {MemoryTokenStore, MemoryUserStore} from '../../source/stores/memory.js';
import {storeContract} from './contract.js';

storeContract({
	name: 'memory',
	async create() {
		return {tokens: new MemoryTokenStore(), users: new MemoryUserStore(), async close() {}};
	},
});
