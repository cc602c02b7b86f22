// The contracts of the game: each command declared once, imported by the service (src/service.ts)
// and by every client (the test, your game). A wrong payload on either end is a compile error, and
// the contract hash tells a client built with other contracts apart at login (CONTRACT_MISMATCH).
import { command, contractSet, jsonCodec } from 'xserver/client';

/** The service type clients address (client command = type * 1000 + cmd). */
export const GAME = 10;

export interface Player {
  name: string;
  score: number;
}

/** Adds points to the caller's score; answers the new standing. */
export const AddScore = command({
  type: GAME,
  cmd: 1,
  name: 'game.addScore',
  request: jsonCodec<{ points: number }>('addScore@1'),
  response: jsonCodec<Player>('player@1'),
  example: { points: 10 },
});

/** The best players, highest score first. */
export const Top = command({
  type: GAME,
  cmd: 2,
  name: 'game.top',
  request: jsonCodec<{ limit: number }>('top@1'),
  response: jsonCodec<Player[]>('players@1'),
  example: { limit: 10 },
});

/** Pushed to a player whose score passed a hundred. */
export const Milestone = command({ type: GAME, cmd: 3, name: 'game.milestone', request: jsonCodec<{ score: number }>('milestone@1') });

/** Everything above, for `node.useContracts()` / `contracts` and `new XClient({ contracts })`. */
export const contracts = contractSet(AddScore, Top, Milestone);
