/**
 * Platform features: enhanced networking, UEFI, NitroTPM.
 */
import { type Add, type Loose, has, isTrue } from './helpers.js';

/** Features that need HVM or UEFI. */
export function platformRules(c: Loose, add: Add): void {
  for (const key of ['enaSupport', 'sriovSupport'] as const) {
    if (isTrue(c[key]) && c.amiVirtualizationType === 'paravirtual') {
      add(
        key,
        true,
        'enhanced networking needs HVM, but amiVirtualizationType is "paravirtual"; set it to "hvm" or remove this option',
      );
    }
  }
  if (has(c, 'uefiData')) {
    if (c.bootMode === 'legacy-bios')
      add(
        'uefiData',
        c.uefiData,
        'cannot be used with bootMode "legacy-bios"; set bootMode to "uefi" or remove uefiData',
      );
    else if (!has(c, 'bootMode') && (c.amiArchitecture ?? 'x86_64') !== 'arm64') {
      add('bootMode', undefined, 'must be set to "uefi" (or "uefi-preferred") to use uefiData on this architecture');
    }
  }
  if (has(c, 'tpmSupport') && c.bootMode === 'legacy-bios') {
    add(
      'tpmSupport',
      c.tpmSupport,
      'NitroTPM needs UEFI boot, but bootMode is "legacy-bios"; set bootMode to "uefi" or remove tpmSupport',
    );
  }
}
