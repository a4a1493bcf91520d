/** Every test file starts from an empty emulator (the tier runs its files one at a time). */
import { resetEmulator } from './emulator';

beforeAll(async () => {
  await resetEmulator();
});
