/**
 * The moto server helper lives in fixtures/ (the demo and benchmarks use it too); tests import it
 * from here or from there.
 */
export { MOTO_SOURCE_AMIS, motoEc2, registerImageInMoto, startBuildHost, startMoto } from '../../fixtures/moto.js';
export type { MotoAmi, MotoServer } from '../../fixtures/moto.js';
