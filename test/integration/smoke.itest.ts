import { IAMClient, ListUsersCommand } from '@aws-sdk/client-iam';

test('the emulator answers on its loopback port', async () => {
  const iam = new IAMClient({});
  const response = await iam.send(new ListUsersCommand({}));
  expect(response.Users).toEqual([]);
  expect(process.env.AWS_ENDPOINT_URL).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
});
