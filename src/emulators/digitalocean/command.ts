/** `provisional-emulator digitalocean`: the DigitalOcean API emulator as a command. */
import { startDigitalOceanEmulator } from './server.js';

export const digitalOceanEmulatorCommand = {
  summary: 'DigitalOcean API v2 (droplets, snapshots, keys, actions); droplets are real containers with SSH',
  usage: 'provisional-emulator digitalocean [--port 8080] [--host 127.0.0.1] [--token T]',
  options: { token: { type: 'string' as const } },
  async start(values: Record<string, string | boolean | undefined>) {
    const emulator = await startDigitalOceanEmulator({
      port: values.port === undefined ? 8080 : Number(values.port),
      host: values.host as string | undefined,
      token: values.token as string | undefined,
      onError: (err) => console.error(`emulator: ${err instanceof Error ? err.message : String(err)}`),
    });
    return {
      describe: () => [
        `DigitalOcean API emulator at ${emulator.url}`,
        `  API URL:  ${emulator.url}/v2/   (Packer: "api_url": "${emulator.url}")`,
        `  token:    ${emulator.token}`,
        `  SSH:      droplets listen on port ${emulator.sshPort} of the address the API reports`,
        `  try:      curl -H "Authorization: Bearer ${emulator.token}" ${emulator.url}/v2/account`,
        `  export DIGITALOCEAN_TOKEN=${emulator.token} DIGITALOCEAN_API_URL=${emulator.url}`,
      ],
      close: () => emulator.close(),
    };
  },
};
