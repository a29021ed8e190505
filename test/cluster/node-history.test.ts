import { clusterNodes } from '../support/redis.ts';
import { describeNodeHistory } from '../integration/node-history.suite.ts';

describeNodeHistory('3-master Redis Cluster', () => ({ clusterNodes: clusterNodes() }));
