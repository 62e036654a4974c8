/** The dashboard's entry: a hash router over the pages, one live stream per page. */
import { render } from 'preact';
import { useEffect, useState } from 'preact/hooks';
import { DagPage } from './dag.js';
import { DagsPage } from './dags.js';
import { SwarmPage, VariablesPage, WorkersPage } from './monitor.js';
import { RunPage } from './run.js';

function useHash() {
  const [hash, setHash] = useState(location.hash);
  useEffect(() => {
    const on = () => setHash(location.hash);
    addEventListener('hashchange', on);
    return () => removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function App() {
  const hash = useHash();
  const parts = hash.replace(/^#\/?/, '').split('/').map(decodeURIComponent);
  let page;
  let tab = 'dags';
  if (parts[0] === 'dags' && parts[1]) page = <DagPage key={parts[1]} dagId={parts[1]} />;
  else if (parts[0] === 'runs' && parts[1])
    page = <RunPage key={parts[1]} runId={parts[1]} taskId={parts[2] ?? null} />;
  else if (parts[0] === 'workers') {
    page = <WorkersPage />;
    tab = 'workers';
  } else if (parts[0] === 'swarm') {
    page = <SwarmPage />;
    tab = 'swarm';
  } else if (parts[0] === 'variables') {
    page = <VariablesPage />;
    tab = 'variables';
  } else page = <DagsPage />;
  const link = (id: string, label: string) => (
    <a href={`#/${id === 'dags' ? '' : id}`} class={tab === id ? 'active' : ''}>
      {label}
    </a>
  );
  return (
    <div>
      <nav class="top">
        <b class="brand">airtasks</b>
        {link('dags', 'DAGs')}
        {link('workers', 'Workers & queues')}
        {link('swarm', 'Swarm')}
        {link('variables', 'Variables & pools')}
      </nav>
      <main>{page}</main>
    </div>
  );
}

render(<App />, document.getElementById('app')!);
