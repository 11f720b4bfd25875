/** A test file the server-lifetime test runs in its own vitest: the worker holds two servers. */
import { it } from 'vitest';
import { holdMoto } from './hold-moto.js';

it('holds two test EC2 servers until killed', async () => {
  await holdMoto();
}, 3_600_000);
