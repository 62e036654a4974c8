/** `worker --run-as USER` (src/engine/operators/task-user.ts): who tasks run as, and the refusals. */
import { expect } from 'chai';
import { ExitCode, ValidationError } from '../../src/core/errors.js';
import { resolveTaskUser } from '../../src/engine/operators/task-user.js';

describe('task user (--run-as)', () => {
  const asRoot = process.getuid?.() === 0;

  it('resolves an unprivileged user with its uid, gid and home', function () {
    if (!asRoot) this.skip();
    expect(resolveTaskUser('nobody')).to.deep.include({ name: 'nobody', uid: 65534 });
  });

  const refusal = (name: string, ownUid?: number) => {
    try {
      resolveTaskUser(name, ownUid);
    } catch (err) {
      expect(err).to.be.instanceOf(ValidationError);
      expect((err as ValidationError).exitCode).to.equal(ExitCode.USAGE);
      return (err as ValidationError).messageFor('--run-as');
    }
    throw new Error(`${name} was accepted`);
  };

  it('refuses a user that does not exist, or root, naming the flag (exit 2)', function () {
    if (!asRoot) this.skip();
    expect(refusal('no-such-user-xyz')).to.match(/^--run-as no-such-user-xyz: no such user/);
    expect(refusal('root')).to.match(/that user is root/);
  });

  it('refuses when the worker is not root (exit 2)', () => {
    expect(refusal('nobody', 1000)).to.match(/only a worker running as root.*runs as uid 1000/);
    if (!asRoot) expect(refusal('nobody')).to.match(/only a worker running as root/);
  });
});
