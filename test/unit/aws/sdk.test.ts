/**
 * The lazy SDK loaders hand out the very module a static import gives: one EC2Client class, so
 * clients created by the synchronous factories are the ones aws-sdk-client-mock patches and the
 * ones a caller's `instanceof` recognizes.
 */
import { EC2Client, DescribeImagesCommand } from '@aws-sdk/client-ec2';
import { EBSClient } from '@aws-sdk/client-ebs';
import { STSClient } from '@aws-sdk/client-sts';
import { mockClient } from 'aws-sdk-client-mock';
import { describe, expect, it } from 'vitest';
import { createAwsClients } from '../../../src/aws/clients.js';
import { createEbsClient } from '../../../src/aws/ebs/blocks.js';
import { resolveSourceAmi } from '../../../src/aws/source-image.js';
import { ebsSdk, ebsSdkNow, ec2Sdk, ec2SdkNow, stsSdk, stsSdkNow } from '../../../src/aws/sdk.js';

describe('lazy SDK loaders', () => {
  it('give the same classes as a static import, loaded either way', async () => {
    expect((await ec2Sdk()).EC2Client).toBe(EC2Client);
    expect(ec2SdkNow().EC2Client).toBe(EC2Client);
    expect((await ec2Sdk()).DescribeImagesCommand).toBe(DescribeImagesCommand);
    expect((await stsSdk()).STSClient).toBe(STSClient);
    expect(stsSdkNow().STSClient).toBe(STSClient);
    expect((await ebsSdk()).EBSClient).toBe(EBSClient);
    expect(ebsSdkNow().EBSClient).toBe(EBSClient);
  });

  it('the factories build clients of those classes, which a class mock intercepts', async () => {
    const clients = createAwsClients({ region: 'eu-west-1', accessKey: 'AKIDEXAMPLE', secretKey: 'x' });
    const ebs = createEbsClient({ region: 'eu-west-1', accessKey: 'AKIDEXAMPLE', secretKey: 'x' });
    const mock = mockClient(EC2Client);
    try {
      expect(clients.ec2()).toBeInstanceOf(EC2Client);
      expect(clients.sts()).toBeInstanceOf(STSClient);
      expect(ebs).toBeInstanceOf(EBSClient);
      mock.on(DescribeImagesCommand).resolves({
        Images: [
          {
            ImageId: 'ami-12345678',
            Name: 'base',
            State: 'available',
            RootDeviceType: 'ebs',
            RootDeviceName: '/dev/xvda',
            BlockDeviceMappings: [{ DeviceName: '/dev/xvda', Ebs: { SnapshotId: 'snap-12345678', VolumeSize: 8 } }],
            VirtualizationType: 'hvm',
            Architecture: 'x86_64',
          },
        ],
      });
      const found = await resolveSourceAmi({ sourceAmi: 'ami-12345678', region: 'eu-west-1' }, { ec2: clients.ec2 });
      expect(found.imageId).toBe('ami-12345678');
      expect(mock.commandCalls(DescribeImagesCommand)).toHaveLength(1);
    } finally {
      mock.restore();
      clients.destroy();
      ebs.destroy();
    }
  });
});
