'use strict';
// The JavaScript and TypeScript kernel of the code interpreter (docs/code-interpreter.md, "Kernel
// protocol"): `node --expose-internals js_kernel.js [--typescript]`. Cells run in this process's
// global scope, so their declarations persist. --expose-internals lends us node's own parser and
// the REPL's rewriting of top-level await. TypeScript cells are transpiled (not type-checked) by
// the typescript package, loaded on the first cell.
const fs = require('fs');
const net = require('net');
const path = require('path');
const util = require('util');
const vm = require('vm');
const { createRequire } = require('module');

const typescript = process.argv.includes('--typescript');
let ts = null;
let internals;

// node's parser and the REPL's rewriting of top-level await, loaded on first use.
function nodeInternals() {
  if (internals === undefined) {
    try {
      internals = {
        acorn: require('internal/deps/acorn/acorn/dist/acorn'),
        processTopLevelAwait: require('internal/repl/await').processTopLevelAwait,
      };
    } catch {
      internals = null; // no --expose-internals: cells can neither redeclare nor await at top level
    }
  }
  return internals;
}

// The agent's pipes, reopened (libuv opens with O_CLOEXEC) so that 3 and 4 can be closed: user
// code and its children neither see them at the usual numbers nor inherit them.
const requestsFd = fs.openSync('/proc/self/fd/3', fs.constants.O_RDONLY);
const eventsFd = fs.openSync('/proc/self/fd/4', fs.constants.O_WRONLY);
fs.closeSync(3);
fs.closeSync(4);

function writeAll(fd, data) {
  for (let done = 0; done < data.length;) {
    try {
      done += fs.writeSync(fd, data, done);
    } catch (error) {
      if (error.code !== 'EINTR' && error.code !== 'EAGAIN') throw error;
    }
  }
}

function emit(event) {
  writeAll(eventsFd, Buffer.from(JSON.stringify(event) + '\n'));
}

class CompilationError extends Error {}
CompilationError.prototype.name = 'CompilationError';

function transpile(code, name) {
  ts ??= require('typescript');
  const { outputText, diagnostics } = ts.transpileModule(code, {
    fileName: `${name}.ts`,
    reportDiagnostics: true,
    compilerOptions: { target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.CommonJS },
  });
  const errors = diagnostics.filter((d) => d.category === ts.DiagnosticCategory.Error);
  if (errors.length === 0) return outputText;
  const messages = errors.map((d) => {
    const message = ts.flattenDiagnosticMessageText(d.messageText, '\n');
    if (!d.file) return `error TS${d.code}: ${message}`;
    const { line, character } = d.file.getLineAndCharacterOfPosition(d.start);
    return `${name}(${line + 1},${character + 1}): error TS${d.code}: ${message}`;
  });
  const error = new CompilationError(ts.flattenDiagnosticMessageText(errors[0].messageText, '\n'));
  error.stack = messages.join('\n');
  throw error;
}

// Top-level let, const and class declarations become var, so that a cell can run again (as cells
// in a notebook do) without "Identifier 'x' has already been declared".
function redeclarable(code) {
  if (!/\b(let|const|class)\b/.test(code) || !nodeInternals()) return code;
  const options = { ecmaVersion: 'latest', allowAwaitOutsideFunction: true };
  let body;
  try {
    body = internals.acorn.parse(code, options).body;
  } catch {
    return code; // V8 reports the SyntaxError
  }
  let out = '';
  let at = 0;
  for (const node of body) {
    if (node.type === 'VariableDeclaration' && node.kind !== 'var') {
      out += `${code.slice(at, node.start)}var`;
      at = node.start + node.kind.length;
    } else if (node.type === 'ClassDeclaration') {
      const declaration = code.slice(node.start, node.end);
      out += `${code.slice(at, node.start)}var ${node.id.name} = ${declaration};`;
      at = node.end;
    }
  }
  return out + code.slice(at);
}

// A cell with top-level await becomes the REPL's async function, whose declarations are hoisted
// out of it and whose promise resolves to { value } of the trailing expression.
function compile(code, name) {
  if (code.includes('await') && nodeInternals()) {
    let wrapped = null;
    try {
      wrapped = internals.processTopLevelAwait(code);
    } catch {
      // Not valid code: compiling it as it is gives V8's own SyntaxError.
    }
    if (wrapped !== null) return { script: new vm.Script(wrapped, { filename: name }), wrapped };
  }
  return { script: new vm.Script(code, { filename: name }), wrapped: false };
}

function errorEvent(error) {
  if (!(error instanceof Error)) {
    return { type: 'error', name: 'Error', value: util.inspect(error), traceback: '' };
  }
  if (error.code === 'ERR_SCRIPT_EXECUTION_INTERRUPTED') {
    return { type: 'error', name: 'Interrupted', value: 'interrupted', traceback: '' };
  }
  // The stack ends in the frames of vm, of this kernel and of the task queue, which ran the cell.
  const stack = String(error.stack).split('\n').filter((line) =>
    !/^\s+at (.*(node:vm:|\bjs_kernel\.js:)|process\.processTicksAndRejections )/.test(line));
  return { type: 'error', name: error.name, value: error.message, traceback: stack.join('\n') };
}

// SIGINT is watched for good by node's own watchdog (as the REPL does while it evaluates): a signal
// either stops the running script (breakOnSigint) or is kept as pending until asked for. It is
// never lost and never fatal, as it can be with breakOnSigint alone: that hands SIGINT back to
// node's exit-on-SIGINT handler before our listener is back.
const watchdog = process.binding('contextify');
watchdog.startSigintWatchdog();

// Whether SIGINT came since the last call.
function sigintCame() {
  watchdog.startSigintWatchdog(); // nested: its stop only reports and clears
  return watchdog.stopSigintWatchdog();
}

function interrupted() {
  return Object.assign(new Error('interrupted'), { code: 'ERR_SCRIPT_EXECUTION_INTERRUPTED' });
}

// Settles as PROMISE does, or rejects once SIGINT comes.
function interruptible(promise) {
  return new Promise((resolve, reject) => {
    const poll = setInterval(() => {
      if (watchdog.watchdogHasPendingSigint()) {
        clearInterval(poll);
        reject(interrupted());
      }
    }, 50);
    promise.then(resolve, reject).finally(() => clearInterval(poll));
  });
}

process.on('uncaughtException', (error) => {
  // From a callback of an earlier cell (or a rejection nobody handled): report, live on.
  process.stderr.write(`Uncaught ${util.inspect(error)}\n`);
});

let count = 0;

async function runCell(file) {
  sigintCame(); // one between cells is ignored
  const name = `<cell-${++count}>`;
  let code = fs.readFileSync(file, 'utf8');
  try {
    fs.unlinkSync(file);
  } catch {
    // The agent cleans up after us.
  }
  if (typescript) code = transpile(code, name);
  const { script, wrapped } = compile(redeclarable(code), name);
  let value = script.runInThisContext({ breakOnSigint: true });
  if (util.types.isPromise(value)) value = await interruptible(value);
  if (sigintCame()) throw interrupted(); // just as the script ended
  return wrapped ? value?.value : value;
}

const waiting = []; // paths of the cells to run
let running = null;
let ended = false;

function finish(cell, error, value) {
  if (running !== cell) return;
  clearInterval(cell.guard);
  running = null;
  if (error) {
    emit(errorEvent(error));
  } else if (value !== undefined) {
    emit({ type: 'result', main: true, data: { 'text/plain': util.inspect(value) } });
  }
  emit({ type: 'done' });
  setImmediate(runNext);
}

function runNext() {
  if (running) return;
  if (waiting.length === 0) {
    if (ended) process.exit(0);
    return;
  }
  const cell = { started: false };
  running = cell;
  // node's breakOnSigint has a race: a SIGINT taken just as the script ends can leave V8
  // terminating the JavaScript that runs next, the rest of this function, so that the cell never
  // finishes. A timer runs only once this function has returned (or been cut short): if it finds
  // the cell not started, it finishes the cell as interrupted.
  cell.guard = setInterval(() => cell.started || finish(cell, interrupted()), 100);
  runCell(waiting.shift()).then((value) => finish(cell, null, value),
    (error) => finish(cell, error));
  cell.started = true;
}

// Cells write to fd 1 and 2 directly: an interrupt in the middle of a write by node's own stream
// would leave the stream's state broken, and all later output swallowed.
for (const [stream, fd] of [[process.stdout, 1], [process.stderr, 2]]) {
  stream.write = (chunk, encoding, callback) => {
    if (typeof encoding === 'function') [encoding, callback] = [undefined, encoding];
    writeAll(fd, typeof chunk === 'string' ? Buffer.from(chunk, encoding) : chunk);
    if (callback) process.nextTick(callback);
    return true;
  };
}

const userModule = { exports: {}, require: createRequire(path.join(process.cwd(), '<cell>')) };
Object.assign(globalThis, {
  require: userModule.require,
  module: userModule,
  exports: userModule.exports,
  __filename: path.join(process.cwd(), '<cell>'),
  __dirname: process.cwd(),
});

emit({
  type: 'ready',
  language: typescript ? 'typescript' : 'javascript',
  version: typescript ? require('typescript/package.json').version : process.versions.node,
});

const requests = new net.Socket({ fd: requestsFd, readable: true, writable: false });
let partial = '';
requests.setEncoding('utf8');
requests.on('data', (chunk) => {
  const lines = (partial + chunk).split('\n');
  partial = lines.pop();
  waiting.push(...lines);
  setImmediate(runNext); // not from within the socket's own event: a cut-short cell would cut it
});
requests.on('end', () => {
  ended = true;
  setImmediate(runNext);
});
