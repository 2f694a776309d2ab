/**
 * The aws provider: builders and servers are EC2 instances, versions are AMIs (with their EBS
 * snapshots). The AWS SDK loads in create(), never for `validate`.
 */
import type { ProviderDefinition } from '../types.js';
import { awsEndpointSchema, describeAwsEndpoint } from './endpoint-spec.js';
import { awsLaunchOptionsSchema, awsSettingsSchema, checkBaseRef, type AwsSettings } from './settings.js';

const aws: ProviderDefinition<AwsSettings> = {
  name: 'aws',
  description: 'AWS EC2 instances and AMIs',
  sampleBaseRef: '136693071363/debian-12-amd64-*',
  settingsSchema: awsSettingsSchema,
  launchOptionsSchema: awsLaunchOptionsSchema,
  endpointSchema: awsEndpointSchema,
  describeEndpoint: describeAwsEndpoint,
  checkBaseRef: (ref) => checkBaseRef(ref),
  checkImageName: () => undefined,
  secrets: () => [process.env.AWS_SECRET_ACCESS_KEY, process.env.AWS_SESSION_TOKEN].filter((s): s is string => !!s),
  async create(settings, ctx) {
    const { AwsProvider } = await import('./provider.js');
    return AwsProvider.create(settings, ctx);
  },
};

export default aws;
