/**
 * EC2 API errors: a code, a message and the HTTP status EC2 answers with (400 for client errors,
 * 401 for authentication, 503 for throttling, 500 for its own failures).
 *
 * https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html
 */
export class Ec2Error extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly status = 400,
  ) {
    super(message);
    this.name = 'Ec2Error';
  }
}

export function notFound(kind: 'instance' | 'image' | 'snapshot' | 'keyPair' | 'group' | 'vpc' | 'subnet' | 'volume', ids: string[]): Ec2Error {
  const list = ids.join(', ');
  switch (kind) {
    case 'instance':
      return new Ec2Error('InvalidInstanceID.NotFound', `The instance ID${ids.length > 1 ? 's' : ''} '${list}' ${ids.length > 1 ? 'do' : 'does'} not exist`);
    case 'image':
      return new Ec2Error('InvalidAMIID.NotFound', `The image id '[${list}]' does not exist`);
    case 'snapshot':
      return new Ec2Error('InvalidSnapshot.NotFound', `The snapshot '${list}' does not exist.`);
    case 'keyPair':
      return new Ec2Error('InvalidKeyPair.NotFound', `The key pair '${list}' does not exist`);
    case 'group':
      return new Ec2Error('InvalidGroup.NotFound', `The security group '${list}' does not exist`);
    case 'vpc':
      return new Ec2Error('InvalidVpcID.NotFound', `The vpc ID '${list}' does not exist`);
    case 'subnet':
      return new Ec2Error('InvalidSubnetID.NotFound', `The subnet ID '${list}' does not exist`);
    case 'volume':
      return new Ec2Error('InvalidVolume.NotFound', `The volume${ids.length > 1 ? 's' : ''} '${list}' ${ids.length > 1 ? 'do' : 'does'} not exist.`);
  }
}

/** Malformed ids are a different error from unknown ones in EC2. */
export function checkIdFormat(id: string, prefix: string, code: string): void {
  if (!new RegExp(`^${prefix}-[0-9a-f]{8}([0-9a-f]{9})?$`).test(id)) {
    throw new Ec2Error(code, `Invalid id: "${id}"`);
  }
}
