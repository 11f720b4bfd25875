/**
 * The moto server helper lives in fixtures/ (the demo and benchmarks use it too); tests import it
 * from here or from there.
 */
import type { EC2Client } from '@aws-sdk/client-ec2';
export { MOTO_SOURCE_AMIS, motoEc2, registerImageInMoto, startBuildHost, startMoto } from '../../fixtures/moto.js';
export type { MotoAmi, MotoServer } from '../../fixtures/moto.js';

/**
 * `client` asking the test EC2 for the present on every call (header `X-Test-Ec2-Fresh: 1`): no
 * stale read, so a harness counting what exists is exact. Returns the client.
 */
export function freshReads<C extends { middlewareStack: EC2Client['middlewareStack'] }>(client: C): C {
  client.middlewareStack.add(
    (next) => (args) => {
      const request = args.request as { headers?: Record<string, string> };
      if (request.headers) request.headers['x-test-ec2-fresh'] = '1';
      return next(args);
    },
    { step: 'build', name: 'testEc2Fresh' },
  );
  return client;
}
