/** `provisional-emulator hetzner`: the Hetzner Cloud API emulator as a command. */
import { startHetznerEmulator } from './server.js';

export const hetznerEmulatorCommand = {
  summary: 'Hetzner Cloud API v1 (servers, actions, snapshots, SSH keys, labels); servers are real containers with SSH',
  usage: 'provisional-emulator hetzner [--port 8080] [--host 127.0.0.1] [--token T]',
  options: { token: { type: 'string' as const } },
  async start(values: Record<string, string | boolean | undefined>) {
    const emulator = await startHetznerEmulator({
      port: values.port === undefined ? 8080 : Number(values.port),
      host: values.host as string | undefined,
      token: values.token as string | undefined,
      onError: (err) => console.error(`emulator: ${err instanceof Error ? err.message : String(err)}`),
    });
    return {
      describe: () => [
        `Hetzner Cloud API emulator at ${emulator.url}`,
        `  endpoint: ${emulator.endpoint}   (Packer and hcloud: HCLOUD_ENDPOINT)`,
        `  token:    ${emulator.token}`,
        `  SSH:      servers listen on port ${emulator.sshPort} of the address the API reports`,
        `  try:      curl -H "Authorization: Bearer ${emulator.token}" ${emulator.endpoint}/servers`,
        `  export HCLOUD_TOKEN=${emulator.token} HCLOUD_ENDPOINT=${emulator.endpoint}`,
      ],
      close: () => emulator.close(),
    };
  },
};
