/**
 * What a CLI run against the EC2 emulator needs: the emulator's credentials and endpoint (EC2_URL,
 * which the config names as `endpoint: ${EC2_URL}`), and no other source of credentials (no files,
 * no instance metadata), so that a test never reads the machine's own AWS setup.
 */
import type { Ec2Emulator } from '../../src/emulators/aws/server.js';

export function awsCliEnv(emulator: Pick<Ec2Emulator, 'accessKeyId' | 'secretAccessKey' | 'url'>, stateDir: string): NodeJS.ProcessEnv {
  return {
    AWS_ACCESS_KEY_ID: emulator.accessKeyId,
    AWS_SECRET_ACCESS_KEY: emulator.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent',
    EC2_URL: emulator.url,
    PROVISIONAL_STATE_DIR: stateDir,
  };
}

/** The `provider:` block's settings for the emulator (through EC2_URL), as a user's would be. */
export const AWS_PROVIDER_SETTINGS = '  name: aws\n  region: us-east-1\n  endpoint: ${EC2_URL}\n  ssh-user: root\n  create-timeout: 20';
