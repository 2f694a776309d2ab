/**
 * `provisional-emulator aws`: the EC2 emulator on its own, printing its endpoint and the
 * credentials to use (see ../main.ts, which runs it until Ctrl-C).
 */
import { DEBIAN_OWNER_ID, REGIONS } from './cloud.js';
import { DEFAULT_ACCESS_KEY_ID, DEFAULT_SECRET_ACCESS_KEY, startEc2Emulator } from './server.js';

export const awsEmulatorCommand = {
  summary: 'AWS EC2 Query API (instances, AMIs, snapshots, key pairs, security groups); instances are real containers with SSH',
  usage: 'provisional-emulator aws [--port 8081] [--host 127.0.0.1] [--access-key-id AKID] [--secret-access-key SECRET]',
  options: { 'access-key-id': { type: 'string' as const }, 'secret-access-key': { type: 'string' as const } },
  async start(values: Record<string, string | boolean | undefined>) {
    const accessKeyId = (values['access-key-id'] as string | undefined) ?? DEFAULT_ACCESS_KEY_ID;
    const secretAccessKey = (values['secret-access-key'] as string | undefined) ?? DEFAULT_SECRET_ACCESS_KEY;
    const emulator = await startEc2Emulator({
      port: values.port === undefined ? 8081 : Number(values.port),
      host: values.host as string | undefined,
      accessKeyId,
      secretAccessKey,
    });
    const url = emulator.url;
    return {
      describe: () => [
        `AWS EC2 API emulator at ${url}`,
        `  endpoint:    ${url}   (aws --endpoint-url ${url}; SDK: new EC2Client({ endpoint: '${url}' }))`,
        `  credentials: access key ${accessKeyId}, secret ${secretAccessKey} (signatures are checked)`,
        `  regions:     ${REGIONS.join(', ')}; Debian AMIs owned by ${DEBIAN_OWNER_ID}`,
        `  SSH:         instances listen on port ${emulator.sshPort} of their PublicIpAddress, as root, with the key pair's key`,
        `  try:         AWS_ACCESS_KEY_ID=${accessKeyId} AWS_SECRET_ACCESS_KEY='${secretAccessKey}' aws --endpoint-url ${url} --region us-east-1 ec2 describe-images --owners ${DEBIAN_OWNER_ID}`,
        `  export AWS_ENDPOINT_URL_EC2=${url} AWS_ACCESS_KEY_ID=${accessKeyId} AWS_SECRET_ACCESS_KEY='${secretAccessKey}' AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1`,
        `  faults:      curl -X POST ${url}/_emulator/faults -d '{"throttle":3}'   requests: curl ${url}/_emulator/requests`,
      ],
      close: () => emulator.close(),
    };
  },
};
