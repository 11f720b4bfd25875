/**
 * What ami-chroot uses of `@aws-sdk/client-sts` (see `./ec2.ts` for why the list exists).
 *
 * @packageDocumentation
 */
export { DecodeAuthorizationMessageCommand, STSClient } from '@aws-sdk/client-sts';
