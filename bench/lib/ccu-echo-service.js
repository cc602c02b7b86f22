// The service of the `ccu` scenario (scenarios/9-ccu.js), run by `xserver node --entry`: answers
// client command 1 of type 10 with the bytes it got (what `xserver bots --type 10` sends).
import { defineService } from '../../dist/index.js';

export const CCU_ECHO_TYPE = 10;
export const CCU_ECHO_CMD = 1;

export default defineService({
  type: CCU_ECHO_TYPE,
  name: 'echo',
  start(node) {
    node.handleClient(CCU_ECHO_CMD, (data) => data);
  },
});
