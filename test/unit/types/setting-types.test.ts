/**
 * The primitives take the configuration's types for the settings they share with BuildConfig, so
 * a value BuildConfig refuses does not compile anywhere. Checked by `npm run typecheck`: each
 * `@ts-expect-error` fails the type check if the line below it compiles.
 */
import { describe, expectTypeOf, it } from 'vitest';
import type { CreateVolumeInput, ImageSharing, RegisterOptions } from '../../../src/aws/index.js';
import type { BuildConfig } from '../../../src/config/index.js';

type Setting<K extends keyof BuildConfig> = NonNullable<BuildConfig[K]>;

describe('setting types shared with BuildConfig', () => {
  it('are the same types in the primitives as in BuildConfig', () => {
    expectTypeOf<NonNullable<CreateVolumeInput['volumeType']>>().toEqualTypeOf<Setting<'rootVolumeType'>>();
    expectTypeOf<NonNullable<RegisterOptions['rootVolumeType']>>().toEqualTypeOf<Setting<'rootVolumeType'>>();
    expectTypeOf<NonNullable<RegisterOptions['architecture']>>().toEqualTypeOf<Setting<'amiArchitecture'>>();
    expectTypeOf<NonNullable<RegisterOptions['virtualizationType']>>().toEqualTypeOf<
      Setting<'amiVirtualizationType'>
    >();
    expectTypeOf<NonNullable<RegisterOptions['bootMode']>>().toEqualTypeOf<Setting<'bootMode'>>();
    expectTypeOf<NonNullable<RegisterOptions['tpmSupport']>>().toEqualTypeOf<Setting<'tpmSupport'>>();
    expectTypeOf<NonNullable<RegisterOptions['imdsSupport']>>().toEqualTypeOf<Setting<'imdsSupport'>>();
    expectTypeOf<NonNullable<RegisterOptions['enaSupport']>>().toEqualTypeOf<Setting<'enaSupport'>>();
    expectTypeOf<NonNullable<RegisterOptions['sriovSupport']>>().toEqualTypeOf<Setting<'sriovSupport'>>();
    expectTypeOf<NonNullable<ImageSharing['deregistrationProtection']>>().toEqualTypeOf<
      Setting<'deregistrationProtection'>
    >();
    expectTypeOf<NonNullable<ImageSharing['deprecateAt']>>().toEqualTypeOf<Setting<'deprecateAt'>>();
  });

  it('refuse what BuildConfig refuses', () => {
    // @ts-expect-error 'gp4' is no EBS volume type
    const volume: CreateVolumeInput = { availabilityZone: 'us-east-1a', size: 8, volumeType: 'gp4' };
    const register: RegisterOptions[] = [
      // @ts-expect-error 'gp4' is no EBS volume type
      { name: 'n', rootVolumeType: 'gp4' },
      // @ts-expect-error no such architecture
      { name: 'n', architecture: 'sparc' },
      // @ts-expect-error no such virtualization type
      { name: 'n', virtualizationType: 'pv' },
      // @ts-expect-error no such boot mode
      { name: 'n', bootMode: 'bios' },
      // @ts-expect-error only v2.0 exists
      { name: 'n', tpmSupport: 'v1.2' },
      // @ts-expect-error only v2.0 exists
      { name: 'n', imdsSupport: 'v1.0' },
    ];
    // @ts-expect-error the protection takes booleans
    const sharing: ImageSharing = { deregistrationProtection: { enabled: 'yes' } };
    expectTypeOf(volume).toEqualTypeOf<CreateVolumeInput>();
    expectTypeOf(register).toEqualTypeOf<RegisterOptions[]>();
    expectTypeOf(sharing).toEqualTypeOf<ImageSharing>();
  });
});
