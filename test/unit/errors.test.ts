import { describe, expect, it } from 'vitest';
import {
  AmiChrootError,
  AwsError,
  ConfigError,
  UnmountError,
  WaitTimeoutError,
  isAbortError,
} from '../../src/errors.js';
import { attachCleanupErrors } from '../../src/errors.js';

describe('errors', () => {
  it('have literal names, stable codes, phase and resources', () => {
    const e = new AwsError('Creating the volume failed', {
      operation: 'CreateVolume',
      awsCode: 'VolumeLimitExceeded',
      phase: 'volume',
      resources: { region: 'us-east-1' },
    });
    expect(e).toBeInstanceOf(AmiChrootError);
    expect(e.name).toBe('AwsError');
    expect(e.code).toBe('ERR_AWS');
    expect(e.phase).toBe('volume');
    expect(e.resources.region).toBe('us-east-1');
    expect(Object.keys(e)).not.toContain('name');
  });

  it('ConfigError lists every issue in its message', () => {
    const e = new ConfigError([
      { path: 'amiName', value: 'x', message: 'must be 3 to 128 characters' },
      { path: 'rootVolumeSize', value: -1, message: 'must be a positive integer' },
    ]);
    expect(e.message).toContain('2 problems');
    expect(e.message).toContain('amiName: must be 3 to 128 characters');
    expect(e.phase).toBe('validate');
  });

  it('instanceof works across package copies through the brand', () => {
    const foreign = Object.create({ [Symbol.for('ami-chroot.error')]: true });
    expect(foreign instanceof AmiChrootError).toBe(true);
    expect(new Error('x') instanceof AmiChrootError).toBe(false);
    expect(new WaitTimeoutError('x', 1000, 'creating') instanceof UnmountError).toBe(false);
  });

  it('WaitTimeoutError names what it waited for and the limit', () => {
    const e = new WaitTimeoutError('snapshot snap-1 to be completed', 1_800_000, 'pending 40%');
    expect(e.message).toMatch(
      /Timed out after 1800 s waiting for snapshot snap-1 to be completed \(last state: pending 40%\)/,
    );
  });

  it('cleanup failures are attached to the original error, never replace it', () => {
    const original = new Error('provision failed');
    const out = attachCleanupErrors(original, [new Error('detach failed')]);
    expect(out).toBe(original);
    expect((original as Error & { cleanupErrors: Error[] }).cleanupErrors[0]?.message).toBe('detach failed');
  });

  it('isAbortError recognises abort reasons', () => {
    const c = new AbortController();
    c.abort();
    expect(isAbortError(c.signal.reason)).toBe(true);
    expect(isAbortError(new Error('x'))).toBe(false);
  });
});
