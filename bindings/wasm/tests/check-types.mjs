// Checks the package's TypeScript declarations against what it exports at
// run time: every runtime export is declared, every declared export (and
// every public member of an exported class) has a doc comment. Run from
// the scratch project, where `sealpost` and `typescript` are installed.
import { createRequire } from "node:module";
import * as runtime from "sealpost";

const require = createRequire(import.meta.url);
const ts = require("typescript");
const entry = require.resolve("sealpost/package.json").replace(/package\.json$/, "index.d.ts");
const program = ts.createProgram([entry], { strict: true, noEmit: true, skipLibCheck: false, lib: ["lib.es2022.d.ts", "lib.dom.d.ts", "lib.esnext.disposable.d.ts"] });
const diagnostics = ts.getPreEmitDiagnostics(program);
const problems = diagnostics.map((d) => ts.flattenDiagnosticMessageText(d.messageText, "\n"));
const checker = program.getTypeChecker();
const moduleSymbol = checker.getSymbolAtLocation(program.getSourceFile(entry));
const exported = checker.getExportsOfModule(moduleSymbol);
const declared = new Set(exported.map((s) => s.getName()));
// Glue internals that wasm-bindgen documents itself or that are not API.
// InitInput, InitOutput and SyncInitInput are the loader types wasm-bindgen writes.
const undocumentedOk = new Set(["free", "__destroy_into_raw", "__wbg_ptr", "[Symbol.dispose]", "__@dispose", "default",
  "InitInput", "InitOutput", "SyncInitInput"]);
let checked = 0;
function documented(symbol, where) {
  const name = symbol.getName();
  if (undocumentedOk.has(name) || name.startsWith("__@")) return;
  checked++;
  const doc = ts.displayPartsToString(symbol.getDocumentationComment(checker)).trim();
  if (doc.length === 0) problems.push(`${where}${name} has no doc comment`);
}
for (const s of exported) {
  const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
  documented(target, "");
  if (target.flags & ts.SymbolFlags.Class) {
    for (const m of checker.getPropertiesOfType(checker.getDeclaredTypeOfSymbol(target))) {
      if (!(m.valueDeclaration && ts.getCombinedModifierFlags(m.valueDeclaration) & ts.ModifierFlags.Private)) {
        if (m.parent === target) documented(m, `${target.getName()}.`);
      }
    }
    for (const m of checker.getPropertiesOfType(checker.getTypeOfSymbolAtLocation(target, target.valueDeclaration))) {
      if (m.getName() !== "prototype" && m.parent === target) documented(m, `${target.getName()}.`);
    }
  }
}
for (const name of Object.keys(runtime)) {
  if (!declared.has(name)) problems.push(`runtime export ${name} is not declared`);
}
if (Object.keys(runtime).length < 30) problems.push(`only ${Object.keys(runtime).length} runtime exports`);
if (problems.length > 0) {
  console.error(problems.join("\n"));
  process.exit(1);
}
console.log(`types: ${declared.size} declared exports, ${Object.keys(runtime).length} at run time, ${checked} doc comments checked`);
