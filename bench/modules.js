// Resolves npm packages from test/node_modules, where the project installs its Node tools
// (test/package.json): the benchmark has no package.json of its own.
'use strict';

const path = require('path');
const { createRequire } = require('module');

module.exports = createRequire(path.join(__dirname, '..', 'test', 'package.json'));
