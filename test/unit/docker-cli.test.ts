/** The docker CLI runner against a stand-in `docker` on PATH: output, stdin, DOCKER_HOST and its errors. */
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { expect } from 'chai';
import { ExitCode, UnavailableError } from '../../src/core/errors.js';
import { DockerCliError, runDockerCli } from '../../src/docker/cli.js';
import { dockerError } from '../../src/services/docker.js';

// Builtins only: PATH holds nothing but this stand-in.
const STUB = `#!/bin/sh
echo "args: $*"
echo "host: \${DOCKER_HOST:-none}"
read -r line; echo "stdin: $line"
echo "a warning" >&2
exit \${STUB_EXIT:-0}
`;

describe('docker CLI runner', () => {
  let bin: string;
  /** Only the stand-in on PATH: no real docker or docker-compose is found. */
  let env: Record<string, string>;

  before(async () => {
    bin = await mkdtemp(path.join(os.tmpdir(), 'airtasks-docker-cli-'));
    await writeFile(path.join(bin, 'docker'), STUB);
    await chmod(path.join(bin, 'docker'), 0o755);
    env = { PATH: bin };
  });

  after(async () => {
    await rm(bin, { recursive: true, force: true });
  });

  const failure = async (p: Promise<unknown>): Promise<DockerCliError> => {
    const err = await p.then(
      () => null,
      (e: unknown) => e,
    );
    expect(err).to.be.instanceOf(DockerCliError);
    return err as DockerCliError;
  };

  it('passes arguments, stdin and the engine address; returns stdout and both streams interleaved', async () => {
    const r = await runDockerCli('docker', ['stack', 'ls'], {
      env,
      input: 'hello',
      dockerHost: 'tcp://10.0.0.1:2375',
    });
    expect(r.stdout.split('\n')).to.deep.equal([
      'args: stack ls',
      'host: tcp://10.0.0.1:2375',
      'stdin: hello',
    ]);
    expect(r.stderr).to.equal('a warning');
    expect(r.output).to.include('args: stack ls').and.include('a warning');
  });

  it('fails with the exit code and what the command printed, named as the caller says', async () => {
    const err = await failure(
      runDockerCli('docker', ['stack', 'rm', 's'], {
        env: { ...env, STUB_EXIT: '3' },
        name: 'docker stack rm',
      }),
    );
    expect(err).to.include({
      program: 'docker',
      command: 'docker stack rm s',
      exitCode: 3,
      notInstalled: false,
    });
    expect(err.message)
      .to.match(/^docker stack rm failed \(exit 3\):\n/)
      .and.include('a warning');
    expect(err.output).to.include('args: stack rm s');
    // Without a name, the message shows the whole command line.
    const plain = await failure(runDockerCli('docker', ['version'], { env: { ...env, STUB_EXIT: '1' } }));
    expect(plain.message).to.match(/^docker version failed \(exit 1\)/);
  });

  it('says when the program is not installed', async () => {
    const err = await failure(runDockerCli('docker-compose', ['version'], { env }));
    expect(err).to.include({ notInstalled: true, exitCode: undefined, program: 'docker-compose' });
    expect(err.message).to.equal(
      'docker-compose version failed: docker-compose is not installed (not found on PATH)',
    );
  });

  it('becomes an airtasks error: exit 4 when not installed, else 1 with the output', async () => {
    const missing = dockerError(await failure(runDockerCli('docker-compose', ['up'], { env })));
    expect(missing).to.be.instanceOf(UnavailableError).and.include({
      dependency: 'compose',
      exitCode: ExitCode.UNAVAILABLE,
    });
    const failed = dockerError(
      await failure(runDockerCli('docker', ['stack', 'deploy'], { env: { ...env, STUB_EXIT: '2' } })),
    );
    expect(failed).to.include({ exitCode: ExitCode.ERROR });
    expect((failed as Error).message).to.include('a warning');
  });
});
