import test from 'ava';
import {StatelessAuthManager, currentUser} from '../source/index.js';

// Its own file: ava runs each file in its own process, so no manager here has asyncContext.
test('currentUser() without asyncContext throws, saying how to switch it on', t => {
	const auth = new StatelessAuthManager();
	auth.tokenRequired();
	t.throws(() => currentUser(), {message: /asyncContext: true/});
});
