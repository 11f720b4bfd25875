import { DescribeImageAttributeCommand, DescribeImagesCommand } from '@aws-sdk/client-ec2';
import type { Image } from '@aws-sdk/client-ec2';
import { describe, expect, it } from 'vitest';
import { resolveSourceAmi } from '../../../src/aws/source-image.js';
import { billingLossWarning } from '../../../src/pipeline/prevalidate.js';
import { mockedEc2, options, sourceImageFixture } from '../aws/fixtures.js';

/** The source as DescribeImages describes it, through the library's own lookup. */
async function sourceWith(billing: Partial<Image>) {
  const ec2 = mockedEc2();
  ec2.mock.on(DescribeImagesCommand).resolves({ Images: [sourceImageFixture(billing)] });
  ec2.mock.on(DescribeImageAttributeCommand).resolves({ ImageId: 'ami-source1' });
  return resolveSourceAmi({ sourceAmi: 'ami-source1' }, options(ec2));
}

describe('billingLossWarning', () => {
  it.each<[string, Partial<Image>]>([
    ['RHEL', { PlatformDetails: 'Red Hat Enterprise Linux', UsageOperation: 'RunInstances:0010' }],
    ['SLES', { PlatformDetails: 'SUSE Linux', UsageOperation: 'RunInstances:000g' }],
    ['Windows', { PlatformDetails: 'Windows', UsageOperation: 'RunInstances:0002', Platform: 'Windows' as const }],
    [
      'a Linux/UNIX platform with a billing code',
      { PlatformDetails: 'Linux/UNIX', UsageOperation: 'RunInstances:0800' },
    ],
    ['a non-Linux platform with no usage operation', { PlatformDetails: 'Red Hat BYOL Linux' }],
  ])('warns for %s: names the source, its billing and the consequence', async (_, billing) => {
    const warning = billingLossWarning(await sourceWith(billing));
    expect(warning).toContain('ami-source1');
    expect(warning).toContain(billing.PlatformDetails!);
    if (billing.UsageOperation) expect(warning).toContain(billing.UsageOperation);
    expect(warning).toContain("loses the source's billing code");
    expect(warning).toContain('billed as Linux/UNIX (RunInstances)');
  });

  it.each([
    ['plain Linux/UNIX', { PlatformDetails: 'Linux/UNIX', UsageOperation: 'RunInstances' }],
    ['an endpoint that does not say', {}],
  ])('says nothing for %s', async (_, billing) => {
    expect(billingLossWarning(await sourceWith(billing))).toBeUndefined();
  });
});
