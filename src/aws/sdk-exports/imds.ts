/**
 * What ami-chroot uses of `@aws-sdk/ec2-metadata-service` (see `./ec2.ts` for why the list
 * exists).
 *
 * @packageDocumentation
 */
export { MetadataService } from '@aws-sdk/ec2-metadata-service';
