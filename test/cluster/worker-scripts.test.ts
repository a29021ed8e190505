import { clusterNodes } from '../support/redis.ts';
import { describeWorkerScripts } from '../integration/worker-scripts.suite.ts';

describeWorkerScripts('3-master Redis Cluster', () => ({ clusterNodes: clusterNodes() }));
