/**
 * The EC2 client of the aws provider: the SDK's EC2Client with our one error shape, and the paged
 * describe calls. The SDK retries throttling (RequestLimitExceeded) and 5xx with backoff; what is
 * left is a ProviderError with EC2's code, message and request id.
 */
import { DescribeImagesCommand, DescribeInstancesCommand, EC2Client, type Filter, type Image, type Instance, type Tag } from '@aws-sdk/client-ec2';
import { CancelledError, EXIT, ProviderError, UsageError } from '../../core/errors.js';

export interface Ec2Target {
  region: string;
  endpoint?: string;
  /** A profile of ~/.aws/config, given to the SDK (never written into process.env). */
  profile?: string;
}

export class Ec2 {
  private constructor(
    readonly sdk: EC2Client,
    readonly target: Ec2Target,
  ) {}

  static async open(target: Ec2Target): Promise<Ec2> {
    const ec2 = new Ec2(newClient(target), target);
    try {
      await ec2.sdk.config.credentials();
    } catch (err) {
      ec2.close();
      throw new UsageError(`no AWS credentials: ${(err as Error).message}`, 'set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or AWS_PROFILE, or run `aws configure`');
    }
    return ec2;
  }

  /** The same endpoint and credentials in another region (close it after use). */
  inRegion(region: string): Ec2 {
    return new Ec2(newClient({ ...this.target, region }), { ...this.target, region });
  }

  get region(): string {
    return this.target.region;
  }

  /** Every SDK call goes through here: one error shape, with EC2's code, message and request id. */
  call<T>(operation: string, fn: (sdk: EC2Client, signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
    return awsCall(operation, (s) => fn(this.sdk, s), signal);
  }

  async describeImages(input: { Owners?: string[]; ImageIds?: string[]; Filters?: Filter[] }, operation: string, signal: AbortSignal): Promise<Image[]> {
    const images: Image[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.call(operation, (sdk, s) => sdk.send(new DescribeImagesCommand({ ...input, NextToken, MaxResults: input.ImageIds ? undefined : 1000 }), { abortSignal: s }), signal);
      images.push(...(page.Images ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return images;
  }

  async describeInstances(input: { InstanceIds?: string[]; Filters?: Filter[] }, operation: string, signal: AbortSignal): Promise<Instance[]> {
    const out: Instance[] = [];
    let NextToken: string | undefined;
    do {
      const page = await this.call(operation, (sdk, s) => sdk.send(new DescribeInstancesCommand({ ...input, NextToken }), { abortSignal: s }), signal);
      for (const r of page.Reservations ?? []) out.push(...(r.Instances ?? []));
      NextToken = page.NextToken;
    } while (NextToken);
    return out;
  }

  close(): void {
    this.sdk.destroy();
  }
}

/** One AWS SDK call (EC2's or ELBv2's) as a ProviderError with the service's code, message and request id. */
export async function awsCall<T>(operation: string, fn: (signal: AbortSignal) => Promise<T>, signal: AbortSignal): Promise<T> {
  try {
    return await fn(signal);
  } catch (err) {
    if (signal.aborted) throw new CancelledError();
    const e = err as Error & { name: string; $metadata?: { httpStatusCode?: number; requestId?: string } };
    const authFailure = /AuthFailure|UnauthorizedOperation|InvalidClientTokenId|SignatureDoesNotMatch/.test(e.name);
    throw new ProviderError({
      provider: 'aws',
      operation,
      message: e.message,
      code: e.name,
      status: e.$metadata?.httpStatusCode,
      requestId: e.$metadata?.requestId,
      exitCode: authFailure ? EXIT.usage : EXIT.failed,
      hint: authFailure ? 'the AWS credentials were rejected: check AWS_ACCESS_KEY_ID / AWS_PROFILE' : undefined,
      cause: err,
    });
  }
}

function newClient(target: Ec2Target): EC2Client {
  return new EC2Client({ region: target.region, endpoint: target.endpoint, profile: target.profile, maxAttempts: 10, retryMode: 'standard' });
}

/** Our labels as EC2 tags (only `provisional-*` keys). */
export function toTags(labels: Record<string, string>): Tag[] {
  return Object.entries(labels)
    .filter(([k]) => k.startsWith('provisional-'))
    .map(([Key, Value]) => ({ Key, Value }));
}

export function tagMap(tags: Tag[] | undefined): Record<string, string> {
  return Object.fromEntries((tags ?? []).filter((t) => t.Key).map((t) => [t.Key!, t.Value ?? '']));
}

/** Whether an error is EC2's "no such thing" (a repeat delete, a resource already gone). */
export function isNotFound(err: unknown, code = /NotFound|Malformed/): boolean {
  return hasCode(err, code);
}

/** Whether an error is the service's answer with a code like `code`. */
export function hasCode(err: unknown, code: RegExp): boolean {
  return err instanceof ProviderError && code.test(err.code ?? '');
}
