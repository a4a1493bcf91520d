/** Points the AWS SDK of every test file at the emulator, as an operator's AWS_ENDPOINT_URL would. */
import { awsEnvironment } from './emulator';

Object.assign(process.env, awsEnvironment());
