import { CfnOutput, Stack, StackProps } from 'aws-cdk-lib';
import type { Construct } from 'constructs';
import { KeyRotation, KeyRotationProps } from './constructs/key-rotation';

export interface KeyRotationStackProps extends StackProps {
  /** The rotation's configuration (see the README's configuration table). */
  readonly rotation?: KeyRotationProps;
}

/** Composes the service's constructs; no logic of its own. */
export class KeyRotationStack extends Stack {
  readonly rotation: KeyRotation;

  constructor(scope: Construct, id: string, props: KeyRotationStackProps = {}) {
    super(scope, id, props);
    this.rotation = new KeyRotation(this, 'KeyRotation', props.rotation);
    new CfnOutput(this, 'LedgerTableName', { value: this.rotation.ledgerTable.tableName });
    new CfnOutput(this, 'SecretPrefix', { value: this.rotation.secretPrefix });
  }
}
