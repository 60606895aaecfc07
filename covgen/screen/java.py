"""The Java screen: decide, before javac sees it, whether a candidate JUnit 5 test may run at all.

Strict mode (the default) is an allowlist. A test may name, in imports and in fully qualified
names alike, only ``java.lang`` (minus the members below), ``java.util`` and its pure parts,
``java.math``, ``java.time``, ``java.text``, ``java.nio.charset``, a few in-memory ``java.io``
classes, JUnit Jupiter (``org.junit.jupiter.api`` and ``.params``), AssertJ, Hamcrest, Mockito,
and the project's own packages. ``java.nio.file.Path``/``Files`` are allowed only in a class
that declares a ``@TempDir``: keeping file access to the temporary folder is then up to the test
and the sandbox, a simple rule the screen does not prove. Refused everywhere, however spelt
(imported, fully qualified, statically imported, as a method reference): ending the JVM,
processes, threads and executors, reflection and method handles, loading classes or native
code, changing the JVM's global state (``System.setOut``, ``setProperty`` …), the environment,
the network, files outside a ``@TempDir``, and the runner's own packages (covgen's launcher,
the JUnit Platform, JaCoCo). A static initializer may only assign constants.

javac decodes ``\\uXXXX`` escapes before it parses anything, so ``\\u0053ystem.exit`` is
``System.exit``: the screen decodes them the same way first. Java has no aliasing of types
(``var`` holds values, and the dangerous types are refused by name wherever they appear), so the
names in the token stream are what the test reaches; a type the test declares may not shadow a
``java.lang`` name, so ``System`` always means ``java.lang.System``. What the screen cannot see —
the project's own code doing something — the sandbox limits.

Permissive mode keeps a short denylist: ending the JVM, processes, the network, reflection.
"""

from __future__ import annotations

import os
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from covgen.screen import Screen, ScreenMode

__all__ = ["JavaScreen", "java_reason", "decode_unicode_escapes", "project_packages"]

_ALLOWED_SUMMARY = ("a generated test may use only java.lang, java.util, java.math, java.time, java.text, "
                    "java.nio.charset, JUnit Jupiter, AssertJ, Hamcrest, Mockito and the project's own packages")

# Why each kind of construct is refused; the model reads these in its repair turn.
_EXIT = "a test may not end the JVM"
_PROCESS = "a test may not start processes"
_THREAD = "a test may not start threads or executors (tests must be deterministic)"
_REFLECTION = "a test may not use reflection or method handles"
_LOADING = "a test may not load classes or native code"
_GLOBAL = "a test may not change the JVM's global state"
_ENV = "a test may not read the environment"
_NETWORK = "a test may not use the network"
_FILES = "a test may touch files only in a @TempDir (declare one to use java.nio.file.Path and Files)"
_RUNNER = "a test may not reach covgen's runner, the JUnit Platform or JaCoCo"
_NATIVE = "a test may not declare native methods"

#: java.lang types refused by simple name wherever they appear: they need no import, so the
#: package rules never see them. (Other dangerous types — executors, timers, method handles —
#: live in packages the allowlist leaves out, so a project class that shares their simple name
#: is not refused for it.)
_TYPES: dict[str, str] = {
    "Runtime": _EXIT, "ProcessBuilder": _PROCESS, "ProcessHandle": _PROCESS, "Thread": _THREAD, "ThreadGroup": _THREAD,
    "ClassLoader": _LOADING, "SecurityManager": _GLOBAL, "ModuleLayer": _REFLECTION,
}
#: Of those, the ones permissive mode refuses too.
_PERMISSIVE_TYPES = frozenset({"Runtime", "ProcessBuilder", "ProcessHandle", "ClassLoader"})
#: Methods refused on any receiver (and as bare calls or method references).
_METHODS: dict[str, str] = {
    "exit": _EXIT, "halt": _EXIT, "exec": _PROCESS, "addShutdownHook": _GLOBAL,
    "forName": _LOADING, "loadClass": _LOADING, "defineClass": _LOADING, "getClassLoader": _LOADING,
    "getContextClassLoader": _LOADING, "setContextClassLoader": _LOADING, "loadLibrary": _LOADING,
    "getResource": _LOADING, "getResourceAsStream": _LOADING, "getProtectionDomain": _LOADING,
    "setAccessible": _REFLECTION, "trySetAccessible": _REFLECTION, "newInstance": _REFLECTION,
    "getDeclaredField": _REFLECTION, "getDeclaredFields": _REFLECTION, "getDeclaredMethod": _REFLECTION,
    "getDeclaredMethods": _REFLECTION, "getDeclaredConstructor": _REFLECTION, "getDeclaredConstructors": _REFLECTION,
    "getDeclaredClasses": _REFLECTION, "getField": _REFLECTION, "getFields": _REFLECTION, "getMethod": _REFLECTION,
    "getMethods": _REFLECTION, "getConstructor": _REFLECTION, "getConstructors": _REFLECTION,
    "getRecordComponents": _REFLECTION, "getModule": _REFLECTION, "addOpens": _REFLECTION, "addExports": _REFLECTION,
    "parallel": _THREAD, "parallelStream": _THREAD, "parallelSort": _THREAD, "parallelSetAll": _THREAD,
    "parallelPrefix": _THREAD,
}
_PERMISSIVE_METHODS = frozenset({"exit", "halt", "exec", "forName", "loadClass", "defineClass", "loadLibrary", "setAccessible",
                                 "getDeclaredField", "getDeclaredFields", "getDeclaredMethod", "getDeclaredMethods",
                                 "getDeclaredConstructor", "getDeclaredConstructors"})
#: ``System`` members refused (the rest — out, err, lineSeparator, arraycopy, nanoTime … — are fine).
_SYSTEM: dict[str, str] = {
    "exit": _EXIT, "setOut": _GLOBAL, "setErr": _GLOBAL, "setIn": _GLOBAL, "setProperty": _GLOBAL,
    "setProperties": _GLOBAL, "getProperties": _GLOBAL, "clearProperty": _GLOBAL, "setSecurityManager": _GLOBAL,
    "getenv": _ENV, "load": _LOADING, "loadLibrary": _LOADING, "inheritedChannel": _NETWORK, "console": _GLOBAL,
}
_PERMISSIVE_SYSTEM = frozenset({"exit", "setSecurityManager", "load", "loadLibrary"})

#: Packages refused in both modes, with why (a prefix refuses its subpackages).
_DENIED_PACKAGES: tuple[tuple[str, str], ...] = (
    ("java.lang.reflect", _REFLECTION), ("java.lang.invoke", _REFLECTION), ("java.net", _NETWORK),
    ("javax.net", _NETWORK), ("java.rmi", _NETWORK), ("sun", _REFLECTION), ("com.sun", _REFLECTION),
    ("jdk", _REFLECTION), ("java.lang.foreign", _LOADING), ("org.jacoco", _RUNNER), ("org.junit.platform", _RUNNER), ("covgen", _RUNNER),
)
#: Packages a test may not declare itself in: their package-private members are not the project's.
_FOREIGN_PACKAGES = tuple((prefix, "a test may not join a package of the JDK or of a test library")
                          for prefix in ("java", "javax", "jdk", "org.junit", "org.assertj", "org.mockito", "org.hamcrest"))
#: Refused in strict mode only.
_STRICT_DENIED: tuple[tuple[str, str], ...] = (
    ("java.lang.ref", _THREAD), ("java.lang.management", _GLOBAL), ("java.lang.instrument", _REFLECTION),
    ("java.lang.module", _REFLECTION), ("java.lang.constant", _REFLECTION), ("java.lang.runtime", _REFLECTION),
    ("java.nio.channels", _FILES), ("java.io", _FILES), ("java.nio.file", _FILES),
    ("java.util.prefs", _GLOBAL), ("java.util.jar", _FILES), ("java.util.zip", _FILES), ("java.util.logging", _GLOBAL),
    ("java.util.spi", _LOADING), ("java.util.concurrent", _THREAD), ("org.junit.jupiter.api.parallel", _THREAD),
    ("org.junit.jupiter.api.extension", "a test may not install JUnit extensions of its own (they can hide a failure)"),
    ("org.mockito.internal", _REFLECTION), ("org.mockito.plugins", _REFLECTION),
    ("org.assertj.core.util", _FILES), ("org.assertj.core.internal", _REFLECTION),
)
#: Packages a strict test may use (and their subpackages, less what is denied above).
_ALLOWED_PACKAGES = ("java.lang", "java.util", "java.math", "java.time", "java.text", "java.nio.charset",
                     "org.junit.jupiter.api", "org.junit.jupiter.params", "org.assertj", "org.hamcrest", "org.mockito")
#: Single classes a strict test may use inside a denied package.
_ALLOWED_CLASSES = frozenset({
    # to use a library's extension (MockitoExtension); the interfaces to write one are refused
    "org.junit.jupiter.api.extension.ExtendWith",
    *(f"java.io.{name}" for name in (
        "IOException", "UncheckedIOException", "EOFException", "Serializable", "Closeable", "ByteArrayInputStream",
        "ByteArrayOutputStream", "StringReader", "StringWriter", "CharArrayReader", "CharArrayWriter", "BufferedReader",
        "BufferedWriter", "Reader", "Writer", "InputStream", "OutputStream", "InputStreamReader", "OutputStreamWriter")),
    *(f"java.util.concurrent.{name}" for name in (
        "ConcurrentHashMap", "ConcurrentMap", "ConcurrentSkipListMap", "ConcurrentSkipListSet", "ConcurrentLinkedQueue",
        "ConcurrentLinkedDeque", "CopyOnWriteArrayList", "CopyOnWriteArraySet", "TimeUnit", "Callable",
        "TimeoutException", "ExecutionException", "BlockingQueue", "LinkedBlockingQueue", "ArrayBlockingQueue")),
})
_ALLOWED_SUBPACKAGES = ("java.util.concurrent.atomic", "java.util.concurrent.locks")
#: What ``java.nio.file`` a class with a ``@TempDir`` may use.
_TEMPDIR_CLASSES = frozenset({"java.nio.file.Path", "java.nio.file.Files", "java.nio.file.StandardOpenOption",
                              "java.nio.file.NoSuchFileException"})
#: ``java.util`` classes refused by name (java.util.Formatter and Scanner open files by name).
_DENIED_CLASSES = {"java.util.Formatter": _FILES, "java.util.Scanner": _FILES, "java.util.Timer": _THREAD,
                   "java.util.TimerTask": _THREAD, "java.util.ServiceLoader": _LOADING}
#: JUnit annotations whose strings name methods: only the test's own, not ``"java.lang.System#exit"``.
_METHOD_NAMING_ANNOTATIONS = frozenset({"MethodSource", "FieldSource", "EnabledIf", "DisabledIf"})
#: Simple names of java.lang types a test's own type may not take: the screen reads them as the JDK's.
_JAVA_LANG = frozenset({
    "Object", "String", "System", "Class", "Math", "StrictMath", "Integer", "Long", "Short", "Byte", "Double", "Float",
    "Boolean", "Character", "Number", "Void", "Enum", "Record", "Iterable", "Comparable", "Runnable", "Throwable",
    "Exception", "Error", "RuntimeException", "StringBuilder", "StringBuffer", "CharSequence", "Override",
    "Deprecated", "SuppressWarnings", "FunctionalInterface", "SafeVarargs", "AutoCloseable", "Cloneable", "Package",
    "ThreadLocal", "InheritableThreadLocal", "ClassValue", *_TYPES,
})
_PACKAGE_STARTS = re.compile(r"[a-z_]")
_ESCAPE = re.compile(r"\\u+([0-9a-fA-F]{4})")


class JavaScreen(Screen):
    """A screen for Java candidates, bound to one project's packages (held as ``project_modules``).

    It is a :class:`Screen` so the pipeline and the funnel take it where they take the Python one.
    """

    __slots__ = ()

    def __init__(self, mode: ScreenMode = "strict", project_packages: Iterable[str] = ()) -> None:
        super().__init__(mode, frozenset(project_packages))

    @property
    def project_packages(self) -> frozenset[str]:
        return self.project_modules

    def reason(self, source: str) -> str | None:
        return java_reason(source, self.project_modules, strict=self.mode == "strict")


def project_packages(root: Path, classes: Iterable[str] = (), source_roots: Sequence[str] = ("src/main/java",)) -> frozenset[str]:
    """The project's packages: those of `classes` (fully qualified names) and every folder of a source root holding Java files.

    Symlinked folders are not followed: a package is the project's only where its sources are.
    """
    packages = {name.rpartition(".")[0] for name in classes if "." in name}
    for source_root in source_roots:
        base = root / source_root
        for folder, directories, files in os.walk(base):
            directories[:] = sorted(d for d in directories if not (Path(folder) / d).is_symlink())
            if any(f.endswith(".java") for f in files) and Path(folder) != base:
                packages.add(Path(folder).relative_to(base).as_posix().replace("/", "."))
    return frozenset(p for p in packages if p and _denied(p, _DENIED_PACKAGES) is None)


def decode_unicode_escapes(source: str) -> str:
    """Decode ``\\uXXXX`` (and ``\\uuuXXXX``) escapes as javac does before it reads anything else.

    A backslash starts an escape only when an even number of backslashes precede it, so
    ``"\\\\u0041"`` in a string stays six characters. An escape that is not four hex digits
    is left alone: javac rejects the file.
    """
    out: list[str] = []
    index = 0
    backslashes = 0
    while index < len(source):
        char = source[index]
        if char == "\\" and backslashes % 2 == 0:
            match = _ESCAPE.match(source, index)
            if match is not None:
                out.append(chr(int(match.group(1), 16)))
                index = match.end()
                backslashes = 0  # an escaped backslash (\u005c) does not start another escape
                continue
        backslashes = backslashes + 1 if char == "\\" else 0
        out.append(char)
        index += 1
    return "".join(out)


@dataclass(frozen=True, slots=True)
class _Refusal:
    line: int
    text: str
    #: A rule that names the danger is said before the generic "not on the allowlist" on the same line.
    specific: bool = True


def java_reason(source: str, project_packages: Iterable[str] = (), *, strict: bool = True) -> str | None:
    """Why the Java test `source` may not run, or None; `project_packages` are the project's packages."""
    import javalang

    # javac ends a line (and a // comment) at CR, LF or CRLF; javalang only at LF, so a lone CR
    # would hide the code after it from the screen. Escapes are decoded first, as javac does.
    decoded = re.sub(r"\r\n?", "\n", decode_unicode_escapes(source))
    # javac ignores "identifier-ignorable" characters inside names (Sys\u200btem is System):
    # drop them everywhere, which changes nothing else a screen looks at.
    decoded = "".join(c for c in decoded if not _ignorable(c))
    # javalang decodes escapes itself, and also ones javac does not (after an odd run of
    # backslashes, inside literals): turn what is left into a harmless letter first.
    neutral = re.sub(r"(?<=\\)u", "x", decoded)
    try:
        tokens = list(javalang.tokenizer.tokenize(neutral))
    except (javalang.tokenizer.LexerError, ValueError, IndexError) as err:
        return f"the screen cannot read this source ({_short(err)}); write plain Java 8+ syntax"
    tree = None
    try:
        tree = javalang.parser.Parser(iter(tokens)).parse()
    except (javalang.parser.JavaSyntaxError, TypeError, IndexError, StopIteration) as err:
        if strict:
            line = getattr(getattr(err, "at", None), "position", None)
            where = f"line {line.line}: " if line is not None else ""
            return (f"{where}the screen cannot parse this test (it reads Java 8 syntax plus var): write it without records, "
                    "text blocks, switch expressions, sealed types or patterns")
    rules = _Rules(tokens, tree, frozenset(project_packages), strict)
    refusals = rules.check()
    if not refusals:
        return None
    first = min(refusals, key=lambda r: (r.line, not r.specific))
    return f"line {first.line}: {first.text}"


class _Rules:
    def __init__(self, tokens: Sequence[Any], tree: Any, packages: frozenset[str], strict: bool) -> None:
        import javalang

        self.kinds = javalang.tokenizer
        self.tokens = tokens
        self.tree = tree
        self.packages = packages
        self.strict = strict
        self.refusals: list[_Refusal] = []
        self.tempdir = any(self._is("@", i) and self._ident(i + 1) == "TempDir" for i in range(len(tokens)))
        #: Statically imported members: ``out.println`` after ``import static …System.out`` is no package.
        self.imported: set[str] = set()
        self.header = self._header()
        self.values = self._value_names() | self.imported if strict else frozenset()

    def check(self) -> list[_Refusal]:
        header = self.header
        for index, token in enumerate(self.tokens):
            if index in header:
                continue
            if isinstance(token, self.kinds.Identifier):
                self._identifier(index)
            elif token.value == "native" and isinstance(token, self.kinds.Modifier):
                self._refuse(index, "native", _NATIVE)
            elif token.value == "static" and self._is("{", index + 1) and self.strict:
                self._static_block(index)
            elif token.value in ("class", "interface", "enum") and isinstance(token, self.kinds.Keyword):
                name = self._ident(index + 1)
                if name in _JAVA_LANG and not self._is(".", index - 1):
                    self._refuse(index + 1, f"a type named {name}",
                                 f"it would shadow java.lang.{name}; give the test's own types other names")
        return self.refusals

    # -- imports and package -------------------------------------------------------------------

    def _header(self) -> set[int]:
        """Check the package and import lines; return their token indexes (the body rules skip them)."""
        seen: set[int] = set()
        index = 0
        while index < len(self.tokens):
            value = self.tokens[index].value
            if value not in ("package", "import") or not isinstance(self.tokens[index], self.kinds.Keyword):
                index += 1
                continue
            end = next((j for j in range(index, len(self.tokens)) if self.tokens[j].value == ";"), len(self.tokens) - 1)
            words = [t.value for t in self.tokens[index + 1 : end]]
            static = bool(words) and words[0] == "static"
            name = "".join(words[1:] if static else words)
            if value == "package":
                self._package_line(index, name)
            else:
                shown = f"import {'static ' if static else ''}{name}"
                if static:
                    self.imported.add(name.rsplit(".", 1)[-1])
                self._name(index, name.removesuffix(".*").split("."), shown, wildcard=name.endswith(".*"))
            seen.update(range(index, end + 1))
            index = end + 1
        return seen

    def _package_line(self, index: int, name: str) -> None:
        denied = _denied(name, _DENIED_PACKAGES) or _denied(name, _FOREIGN_PACKAGES)
        if denied is not None:
            self._refuse(index, f"package {name}", denied)
        elif self.strict and self.packages and not self._project(name):
            self._refuse(index, f"package {name}", "a generated test lives in a package of the project (its focal class's)")

    # -- names ------------------------------------------------------------------------------------

    def _identifier(self, index: int) -> None:
        value = self.tokens[index].value
        after_dot = self._is(".", index - 1) or self._is("::", index - 1)
        if value in _TYPES and (self.strict or value in _PERMISSIVE_TYPES):
            self._refuse(index, value, _TYPES[value])
        call = self._is("(", index + 1) or self._is("::", index - 1)
        if value in _METHODS and (call or value.startswith("get")) and (self.strict or value in _PERMISSIVE_METHODS):
            self._refuse(index, f"{'.' if after_dot else ''}{value}()", _METHODS[value])
        if value == "System" and (self._is(".", index + 1) or self._is("::", index + 1)):
            member = self._ident(index + 2)
            if member in _SYSTEM and (self.strict or member in _PERMISSIVE_SYSTEM):
                self._refuse(index, f"System.{member}", _SYSTEM[member])
        elif value == "System":
            # ``System s = null; s.setOut(…)`` (or ``java.lang.System s``) calls the static method through a variable
            self._refuse(index, "System as a type", "use System's members as System.member only")
        if value in _METHOD_NAMING_ANNOTATIONS and self._annotation(index):
            self._method_names(index)
        if not after_dot:
            chain = self._chain(index)
            # ``order.items.size()`` on a variable is no package; but a variable named ``java``
            # somewhere does not hide ``java.nio.file.Files`` elsewhere: a chain that names a
            # type (a capitalised part) is read as a qualified name whatever its first part is.
            if len(chain) > 1 and _PACKAGE_STARTS.match(chain[0]) and (
                    chain[0] not in self.values or any(part[:1].isupper() for part in chain[1:])):
                self._name(index, chain, ".".join(chain), wildcard=False)

    def _name(self, index: int, parts: list[str], shown: str, *, wildcard: bool) -> None:
        """Check a dotted name (an import or a fully qualified name in code) against the lists."""
        package = ".".join(part for part in _package_parts(parts))
        types = parts[len(package.split(".")) if package else 0:]
        qualified = ".".join(parts)
        denied = _denied(qualified, _DENIED_PACKAGES)
        if denied is not None:
            self._refuse(index, shown, denied)
            return
        if types and types[0] in _TYPES and (self.strict or types[0] in _PERMISSIVE_TYPES):
            self._refuse(index, shown, _TYPES[types[0]])
            return
        if len(types) >= 2 and types[0] == "System" and types[1] in _SYSTEM and (self.strict or types[1] in _PERMISSIVE_SYSTEM):
            self._refuse(index, shown, _SYSTEM[types[1]])
            return
        if wildcard and types == ["System"] and self.strict:
            self._refuse(index, shown, "import System's members by name (some end the JVM or change its state)")
            return
        if not self.strict:
            return
        first_type = f"{package}.{types[0]}" if types else package
        if first_type in _DENIED_CLASSES:
            self._refuse(index, shown, _DENIED_CLASSES[first_type])
        elif first_type in _TEMPDIR_CLASSES:
            if not self.tempdir:
                self._refuse(index, shown, _FILES)
        elif first_type in _ALLOWED_CLASSES or _under(package, _ALLOWED_SUBPACKAGES):
            pass
        elif (denied := _denied(package, _STRICT_DENIED)) is not None:
            self._refuse(index, shown, denied)
        elif _under(package, ("java.lang",)) and package not in ("java.lang", "java.lang.annotation"):
            # java.lang's own classes are the language; its subpackages reach into the JVM
            self._refuse(index, shown, _ALLOWED_SUMMARY, specific=False)
        elif not (_under(package, _ALLOWED_PACKAGES) or self._project(package)):
            self._refuse(index, shown, _ALLOWED_SUMMARY, specific=False)

    def _project(self, package: str) -> bool:
        return bool(package) and _denied(package, _DENIED_PACKAGES) is None and _under(package, tuple(self.packages))

    def _chain(self, index: int) -> list[str]:
        parts = [self.tokens[index].value]
        while self._is(".", index + 1) and self._ident(index + 2) is not None:
            index += 2
            parts.append(self.tokens[index].value)
        return parts

    def _annotation(self, index: int) -> bool:
        """Whether the name at `index` is an annotation's: ``@Name`` or ``@a.b.Name``."""
        while self._is(".", index - 1) and self._ident(index - 2) is not None:
            index -= 2
        return self._is("@", index - 1)

    def _method_names(self, index: int) -> None:
        """``@MethodSource("Other#factory")`` runs any static method by name: only local names."""
        if not self._is("(", index + 1):
            return
        depth = 0
        for position in range(index + 1, len(self.tokens)):
            token = self.tokens[position]
            depth += token.value == "("
            depth -= token.value == ")"
            if isinstance(token, self.kinds.String) and re.search(r"[#.]", token.value):
                self._refuse(position, f"@{self.tokens[index].value}({token.value})",
                             "it may name only methods or fields of the test class itself")
            if depth == 0:
                return

    def _static_block(self, index: int) -> None:
        """A static initializer runs when the class loads, outside any test: constants only."""
        depth = 0
        statement: list[Any] = []
        for position in range(index + 1, len(self.tokens)):
            token = self.tokens[position]
            if token.value == "{":
                depth += 1
                if depth > 1:
                    break
                continue
            if token.value == "}":
                if depth == 1:
                    return
                break
            if token.value == ";":
                if not _constant_assignment(statement, self.kinds):
                    break
                statement = []
                continue
            statement.append(token)
        self._refuse(index, "static { ... }", "a static initializer may only assign constants (NAME = literal;)")

    def _value_names(self) -> frozenset[str]:
        """Names the test declares as variables, fields and parameters: ``x.y`` on them is no package."""
        if self.tree is None:
            return frozenset()
        import javalang

        nodes = javalang.tree
        names: set[str] = set()
        for _, node in self.tree:
            if isinstance(node, (nodes.VariableDeclarator, nodes.FormalParameter, nodes.CatchClauseParameter,
                                 nodes.TryResource, nodes.InferredFormalParameter)):
                names.add(node.name)
            elif isinstance(node, nodes.LambdaExpression):
                names.update(str(getattr(p, "name", None) or getattr(p, "member", "")) for p in node.parameters or ())
        return frozenset(names)

    # -- tokens -----------------------------------------------------------------------------------

    def _is(self, value: str, index: int) -> bool:
        return 0 <= index < len(self.tokens) and self.tokens[index].value == value and not isinstance(
            self.tokens[index], (self.kinds.String, self.kinds.Character))

    def _ident(self, index: int) -> str | None:
        if 0 <= index < len(self.tokens) and isinstance(self.tokens[index], self.kinds.Identifier):
            return str(self.tokens[index].value)
        return None

    def _refuse(self, index: int, construct: str, why: str, *, specific: bool = True) -> None:
        line = int(self.tokens[min(index, len(self.tokens) - 1)].position.line)
        self.refusals.append(_Refusal(line, f"{construct} is not allowed: {why}", specific))


def _package_parts(parts: Sequence[str]) -> Iterator[str]:
    """The leading lowercase segments of a dotted name: its package (``java.util`` of ``java.util.List``)."""
    for part in parts:
        if not _PACKAGE_STARTS.match(part):
            return
        yield part


def _under(name: str, prefixes: Iterable[str]) -> bool:
    return any(name == prefix or name.startswith(prefix + ".") for prefix in prefixes if prefix)


def _denied(name: str, table: Iterable[tuple[str, str]]) -> str | None:
    return next((why for prefix, why in table if _under(name, (prefix,))), None)


def _constant_assignment(tokens: Sequence[Any], kinds: Any) -> bool:
    """``NAME = literal`` (signs, arithmetic and parentheses allowed)."""
    if len(tokens) < 3 or not isinstance(tokens[0], kinds.Identifier) or tokens[1].value != "=":
        return False
    return all(isinstance(t, kinds.Literal) or t.value in ("+", "-", "*", "/", "%", "(", ")") for t in tokens[2:])


def _ignorable(char: str) -> bool:
    """``Character.isIdentifierIgnorable``: some control characters and every format character (Cf)."""
    code = ord(char)
    return 0 <= code <= 8 or 0x0E <= code <= 0x1B or 0x7F <= code <= 0x9F or (code > 0x7F and unicodedata.category(char) == "Cf")


def _short(err: BaseException) -> str:
    return (str(err) or type(err).__name__).splitlines()[0][:120]
