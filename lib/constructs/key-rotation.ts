import { RemovalPolicy } from 'aws-cdk-lib';
import { AttributeType, BillingMode, Table, TableEncryption } from 'aws-cdk-lib/aws-dynamodb';
import { Key } from 'aws-cdk-lib/aws-kms';
import { Construct } from 'constructs';
import { secretPrefixProblem } from '../../lambda/domain/naming';
import { resolveSettings, RotationSettings } from '../../lambda/domain/settings';

export interface KeyRotationProps extends Partial<RotationSettings> {
  /**
   * Secrets are named `<secretPrefix>/<accountId>/<userName>`.
   * @default 'iam-key-rotation'
   */
  readonly secretPrefix?: string;
}

/**
 * IAM access key rotation. This first version creates the encryption key and the ledger; the
 * scheduled planner and rotator follow (issue 3). Props are validated at synth time.
 */
export class KeyRotation extends Construct {
  readonly settings: RotationSettings;
  readonly secretPrefix: string;
  readonly encryptionKey: Key;
  readonly ledgerTable: Table;

  constructor(scope: Construct, id: string, props: KeyRotationProps = {}) {
    super(scope, id);
    const { secretPrefix = 'iam-key-rotation', ...settings } = props;
    const prefixProblem = secretPrefixProblem(secretPrefix);
    if (prefixProblem) throw new Error(`KeyRotation: ${prefixProblem}`);
    this.settings = resolveSettings(settings);
    this.secretPrefix = secretPrefix;

    this.encryptionKey = new Key(this, 'EncryptionKey', {
      description: 'iam-key-rotation: secrets, ledger, topic and queues',
      enableKeyRotation: true,
      removalPolicy: RemovalPolicy.RETAIN,
    });
    this.ledgerTable = new Table(this, 'Ledger', {
      partitionKey: { name: 'pk', type: AttributeType.STRING },
      sortKey: { name: 'sk', type: AttributeType.STRING },
      billingMode: BillingMode.PAY_PER_REQUEST,
      encryption: TableEncryption.CUSTOMER_MANAGED,
      encryptionKey: this.encryptionKey,
      pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
      removalPolicy: RemovalPolicy.RETAIN,
    });
  }
}
