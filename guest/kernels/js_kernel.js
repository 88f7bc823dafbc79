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
let acorn = null;
let processTopLevelAwait = null;
try {
  acorn = require('internal/deps/acorn/acorn/dist/acorn');
  ({ processTopLevelAwait } = require('internal/repl/await'));
} catch {
  // Started without --expose-internals: cells can neither redeclare nor await at top level.
}

// The agent's pipes, reopened (libuv opens with O_CLOEXEC) so that 3 and 4 can be closed: user
// code and its children neither see them at the usual numbers nor inherit them.
const requestsFd = fs.openSync('/proc/self/fd/3', fs.constants.O_RDONLY);
const eventsFd = fs.openSync('/proc/self/fd/4', fs.constants.O_WRONLY);
fs.closeSync(3);
fs.closeSync(4);

function emit(event) {
  const line = Buffer.from(JSON.stringify(event) + '\n');
  for (let done = 0; done < line.length;) done += fs.writeSync(eventsFd, line, done);
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
  if (!acorn || !/\b(let|const|class)\b/.test(code)) return code;
  let body;
  try {
    body = acorn.parse(code, { ecmaVersion: 'latest', allowAwaitOutsideFunction: true }).body;
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
      out += `${code.slice(at, node.start)}var ${node.id.name} = ${code.slice(node.start, node.end)};`;
      at = node.end;
    }
  }
  return out + code.slice(at);
}

// A cell with top-level await becomes the REPL's async function, whose declarations are hoisted
// out of it and whose promise resolves to { value } of the trailing expression.
function compile(code, name) {
  if (processTopLevelAwait && code.includes('await')) {
    let wrapped = null;
    try {
      wrapped = processTopLevelAwait(code);
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
    return { type: 'error', name: 'Interrupted', value: error.message, traceback: '' };
  }
  // The stack ends in the frames of vm, of this kernel and of the task queue, which ran the cell.
  const stack = String(error.stack).split('\n').filter((line) =>
    !/^\s+at (.*(node:vm:|\bjs_kernel\.js:)|process\.processTicksAndRejections )/.test(line));
  return { type: 'error', name: error.name, value: error.message, traceback: stack.join('\n') };
}

let count = 0;
let onInterrupt = null; // set while a cell awaits a promise; SIGINT between cells is ignored
process.on('SIGINT', () => onInterrupt?.());
process.on('uncaughtException', (error) => {
  // From a callback of an earlier cell (or a rejection nobody handled): report, live on.
  process.stderr.write(`Uncaught ${util.inspect(error)}\n`);
});

async function runCell(file) {
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
  if (!util.types.isPromise(value)) return value;
  const interrupted = new Promise((resolve) => { onInterrupt = resolve; });
  const INTERRUPTED = Symbol('interrupted');
  try {
    value = await Promise.race([value, interrupted.then(() => INTERRUPTED)]);
  } finally {
    onInterrupt = null;
  }
  if (value === INTERRUPTED) {
    throw Object.assign(new Error('Promise awaiting interrupted.'), {
      code: 'ERR_SCRIPT_EXECUTION_INTERRUPTED',
    });
  }
  return wrapped ? value?.value : value;
}

async function serve(file) {
  try {
    const value = await runCell(file);
    if (value !== undefined) {
      emit({ type: 'result', main: true, data: { 'text/plain': util.inspect(value) } });
    }
  } catch (error) {
    emit(errorEvent(error));
  }
  emit({ type: 'done' });
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
let queue = Promise.resolve();
requests.setEncoding('utf8');
requests.on('data', (chunk) => {
  const lines = (partial + chunk).split('\n');
  partial = lines.pop();
  for (const line of lines) queue = queue.then(() => serve(line));
});
requests.on('end', () => queue.then(() => process.exit(0)));
