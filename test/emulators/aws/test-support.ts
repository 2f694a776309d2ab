/** Helpers for the EC2 emulator's tests: an SDK client, the AWS CLI, raw Query requests. */
import { EC2Client } from '@aws-sdk/client-ec2';
import { execFile } from 'node:child_process';
import type { Ec2Emulator } from '../../../src/emulators/aws/server.js';

export function ec2Client(emu: Ec2Emulator, region = 'us-east-1', maxAttempts = 3): EC2Client {
  return new EC2Client({
    endpoint: emu.url,
    region,
    credentials: { accessKeyId: emu.accessKeyId, secretAccessKey: emu.secretAccessKey },
    maxAttempts,
  });
}

/** The environment of a clean AWS CLI: these credentials, no config files, no metadata lookups. */
export function awsCliEnv(emu: Ec2Emulator): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(process.env)) if (!k.startsWith('AWS_')) env[k] = v;
  return {
    ...env,
    AWS_ACCESS_KEY_ID: emu.accessKeyId,
    AWS_SECRET_ACCESS_KEY: emu.secretAccessKey,
    AWS_EC2_METADATA_DISABLED: 'true',
    AWS_CONFIG_FILE: '/nonexistent/aws-config',
    AWS_SHARED_CREDENTIALS_FILE: '/nonexistent/aws-credentials',
    AWS_PAGER: '',
  };
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
  json: any;
}

/** `aws --endpoint-url URL --region REGION --output json ec2 ARGS...` (or another service); resolves whatever the exit status. */
export function awsCli(emu: Ec2Emulator, args: string[], opts: { region?: string; timeoutMs?: number; service?: string } = {}): Promise<CliResult> {
  const argv = ['--endpoint-url', emu.url, '--region', opts.region ?? 'us-east-1', '--output', 'json', opts.service ?? 'ec2', ...args];
  return new Promise((resolve) => {
    execFile('aws', argv, { env: awsCliEnv(emu), timeout: opts.timeoutMs ?? 60_000, killSignal: 'SIGKILL', maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      let json: any;
      try {
        json = stdout.trim() ? JSON.parse(stdout) : undefined;
      } catch {
        json = undefined;
      }
      const code = err ? (typeof err.code === 'number' ? err.code : null) : 0;
      resolve({ code, stdout, stderr: err?.killed ? `${stderr}\n(killed after ${opts.timeoutMs ?? 60_000} ms)` : stderr, json });
    });
  });
}

/** A form POST as EC2 gets it, with an unsigned but well-formed SigV4 Authorization header. */
export async function rawRequest(
  url: string,
  form: Record<string, string>,
  opts: { region?: string; accessKeyId?: string; authorization?: string | null } = {},
): Promise<{ status: number; body: string }> {
  const headers: Record<string, string> = { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' };
  if (opts.authorization !== null) {
    headers.authorization =
      opts.authorization ??
      `AWS4-HMAC-SHA256 Credential=${opts.accessKeyId ?? 'AKIDEXAMPLE'}/20240201/${opts.region ?? 'us-east-1'}/ec2/aws4_request, SignedHeaders=host;x-amz-date, Signature=${'0'.repeat(64)}`;
  }
  const response = await fetch(url, { method: 'POST', headers, body: new URLSearchParams({ Version: '2016-11-15', ...form }), signal: AbortSignal.timeout(10_000) });
  return { status: response.status, body: await response.text() };
}

/** Polls `probe` until it returns a value, or fails after `timeoutMs`. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>, intervalMs = 100): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError ? `: ${String(lastError)}` : ''}`);
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
}
