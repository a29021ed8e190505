import { clusterNodes } from '../support/redis.ts';
import { describeSelectorScripts } from '../integration/selector-scripts.suite.ts';

describeSelectorScripts('3-master Redis Cluster', () => ({ clusterNodes: clusterNodes() }));
