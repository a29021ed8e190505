import { clusterNodes } from '../support/redis.ts';
import { describeLifecycleScripts } from '../integration/lifecycle-scripts.suite.ts';

describeLifecycleScripts('3-master Redis Cluster', () => ({ clusterNodes: clusterNodes() }));
