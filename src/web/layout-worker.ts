/** Runs one dagre layout off the web server's event loop (a 1,000-task DAG takes seconds). */
import { parentPort, workerData } from 'node:worker_threads';
import { dagreLayout, type LayoutInput } from './layout-dagre.js';

parentPort!.postMessage(dagreLayout(workerData as LayoutInput));
