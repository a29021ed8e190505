import { clusterNodes } from '../support/redis.ts';
import { describeGatewayScripts } from '../integration/lua-scripts.suite.ts';

describeGatewayScripts('3-master Redis Cluster', () => ({ clusterNodes: clusterNodes() }));
