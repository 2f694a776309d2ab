/**
 * Test helpers for the emulated clouds' traffic parts: a tiny HTTP responder started on a machine
 * over SSH (systemd socket activation and bash, all a minimal Debian has) that answers with the
 * machine's own hostname, and plain HTTP requests that report who answered.
 */
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { sshExec, waitForSsh } from '../contract/ssh.js';

const responder = (body: string) => `#!/bin/bash
while IFS= read -r line; do line=\${line%$'\\r'}; [ -z "$line" ] && break; done
body="$(${body})"
printf 'HTTP/1.0 200 OK\\r\\nContent-Type: text/plain\\r\\nContent-Length: %d\\r\\nConnection: close\\r\\n\\r\\n%s\\n' $(( \${#body} + 1 )) "$body"
`;

/**
 * Starts the responder as a unit `web-PORT-*` (stop it with `systemctl stop 'web-*'`) on
 * listen:port of the machine at `address` (default listen: `address`, as the emulators' machines
 * share the host's network); it answers what `body` prints (default: the hostname).
 */
export async function startResponder(address: string, sshPort: number, privateKey: string, port: number, body = 'cat /etc/hostname', listen = address): Promise<void> {
  const ssh = await waitForSsh({ host: address, port: sshPort, user: 'root' }, privateKey, 30_000);
  try {
    const script = `cat > /usr/local/bin/hello <<'EOF'\n${responder(body)}EOF\nchmod +x /usr/local/bin/hello\nsystemd-run --collect --unit=web-${port}-${Date.now()} systemd-socket-activate -l ${listen}:${port} --inetd -a /usr/local/bin/hello`;
    const result = await sshExec(ssh, script, 30_000);
    if (result.code !== 0) throw new Error(`starting the responder failed: ${result.stderr}`);
    // systemd-run returns before the socket is bound. A port the host cannot reach (a QEMU guest's) is asked on the machine.
    if (listen !== address) {
      const bound = await sshExec(ssh, `for i in $(seq 150); do ss -Hltn 'sport = :${port}' | grep -q . && exit 0; sleep 0.1; done; exit 1`, 30_000);
      if (bound.code !== 0) throw new Error(`the responder on ${listen}:${port} is not listening`);
      return;
    }
  } finally {
    ssh.end();
  }
  const deadline = Date.now() + 15_000;
  while (!('status' in (await whoAnswers(address, port)))) {
    if (Date.now() > deadline) throw new Error(`the responder on ${address}:${port} does not answer`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export async function runOn(address: string, sshPort: number, privateKey: string, command: string): Promise<string> {
  const ssh = await waitForSsh({ host: address, port: sshPort, user: 'root' }, privateKey, 30_000);
  try {
    const result = await sshExec(ssh, command, 30_000);
    if (result.code !== 0) throw new Error(`${command} failed: ${result.stderr}`);
    return result.stdout;
  } finally {
    ssh.end();
  }
}

/** GET / on host:port: the answering machine's hostname, or the error's code. */
export function whoAnswers(host: string, port: number, timeoutMs = 5000): Promise<{ status: number; body: string } | { error: string }> {
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/', agent: false, timeout: timeoutMs }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: body.trim() }));
      res.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (err) => resolve({ error: (err as NodeJS.ErrnoException).code ?? err.message }));
    req.end();
  });
}

/** Hostnames of `count` answers in order (an error counts as `!code`). */
export async function answers(host: string, port: number, count: number): Promise<string[]> {
  const out: string[] = [];
  for (let i = 0; i < count; i++) {
    const a = await whoAnswers(host, port);
    out.push('error' in a ? `!${a.error}` : a.status === 200 ? a.body : `HTTP ${a.status}`);
  }
  return out;
}

/** A request left half-sent (no blank line yet), so that its connection stays open to one member. */
export async function holdRequest(host: string, port: number): Promise<{ finish(): Promise<string> }> {
  const socket: Socket = connect({ host, port });
  await new Promise<void>((resolve, reject) => socket.once('connect', resolve).once('error', reject));
  let data = '';
  socket.setEncoding('utf8');
  socket.on('data', (c) => (data += c));
  const ended = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  socket.write('GET / HTTP/1.0\r\nHost: held\r\n');
  return {
    async finish() {
      socket.write('\r\n');
      await ended;
      const [head, body = ''] = data.split('\r\n\r\n');
      return head?.startsWith('HTTP/1.0 200') ? body.trim() : `!${head ?? 'nothing'}`;
    },
  };
}
