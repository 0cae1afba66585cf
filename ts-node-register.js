// Lets Node load TypeScript test, example and benchmark files through ts-node's ESM hooks.
import {register} from 'node:module';
import {pathToFileURL} from 'node:url';

register('ts-node/esm', pathToFileURL('./'));
