import Foundation
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// One run of a `serve-stage` command: spawned with `posix_spawnp` (no shell, PATH lookup)
/// in a process group of its own, the call's params on stdin, stdout collected (bounded)
/// and stderr passed through line by line with a prefix.
///
/// One thread per run polls the three pipes and reaps the child; ``finished()`` resumes
/// when stdout and stderr are closed and the child is reaped. When the child exits while
/// something it started still holds a pipe open, the rest of its process group is killed,
/// so nothing is left behind.
final class HandlerProcess: Sendable {
    /// How a run ended.
    struct Outcome: Sendable {
        enum Termination: Sendable, Equatable {
            case exited(Int32)
            case signaled(Int32)
        }

        var termination: Termination
        /// Everything read from stdout (at most the limit).
        var stdout: [UInt8]
        /// True when stdout went over the limit (the command was then killed).
        var overflowed: Bool
        /// The first non-empty line the command wrote to stderr, if any.
        var firstStderrLine: String?
    }

    /// Why a command could not be started (`errno` text).
    struct SpawnError: Error, CustomStringConvertible {
        var description: String
    }

    let pid: pid_t
    private let state: Mutex<State>

    private struct State {
        var finished = false
        var terminating = false
        var outcome: Outcome?
        var waiter: CheckedContinuation<Outcome, Never>?
    }

    /// Pipe creation and spawning are serialized: this is the only place the process starts
    /// children, so no other child can inherit a pipe end between `pipe` and `FD_CLOEXEC`.
    private static let spawnLock = Mutex(())

    private init(pid: pid_t) {
        self.pid = pid
        self.state = Mutex(State())
    }

    /// Starts `arguments` (`arguments[0]` looked up on PATH unless it holds a `/`), writes
    /// `input` to its stdin and closes it. Stderr lines are written to this process's stderr
    /// as `prefix + line`. `environment` adds to (or replaces in) this process's environment;
    /// with `passStdout` the command writes to this process's stdout directly (and
    /// ``Outcome/stdout`` stays empty).
    static func spawn(
        _ arguments: [String], input: [UInt8], outputLimit: Int, stderrPrefix: String,
        environment: [String: String] = [:], passStdout: Bool = false
    ) throws(SpawnError) -> HandlerProcess {
        let spawned: (pid: pid_t, stdin: Int32, stdout: Int32, stderr: Int32)
        do {
            spawned = try spawnLock.withLock { _ throws(SpawnError) in
                try startChild(arguments, environment: environment, passStdout: passStdout)
            }
        }
        let process = HandlerProcess(pid: spawned.pid)
        let pump = Pump(
            process: process, input: input, stdinFD: spawned.stdin, stdoutFD: spawned.stdout,
            stderrFD: spawned.stderr, outputLimit: outputLimit, stderrPrefix: stderrPrefix)
        Thread.detachNewThread { pump.run() }
        return process
    }

    /// Waits until the command has exited and its output is read.
    func finished() async -> Outcome {
        await withCheckedContinuation { (continuation: CheckedContinuation<Outcome, Never>) in
            let ready = state.withLock { s -> Outcome? in
                if let outcome = s.outcome { return outcome }
                s.waiter = continuation
                return nil
            }
            if let ready { continuation.resume(returning: ready) }
        }
    }

    /// SIGTERM to the command's process group, then SIGKILL one second later unless it is
    /// gone by then. No effect once the run has finished; calling it again does nothing more.
    func terminate() {
        let send = state.withLock { s -> Bool in
            guard !s.finished, !s.terminating else { return false }
            s.terminating = true
            return true
        }
        guard send else { return }
        kill(-pid, SIGTERM)
        DispatchQueue.global().asyncAfter(deadline: .now() + 1) { [self] in
            let alive = state.withLock { !$0.finished }
            if alive { kill(-pid, SIGKILL) }
        }
    }

    fileprivate func complete(_ outcome: Outcome) {
        let waiter = state.withLock { s in
            s.finished = true
            s.outcome = outcome
            defer { s.waiter = nil }
            return s.waiter
        }
        waiter?.resume(returning: outcome)
    }

    // MARK: spawning

    private static func startChild(_ arguments: [String], environment: [String: String], passStdout: Bool)
        throws(SpawnError) -> (pid: pid_t, stdin: Int32, stdout: Int32, stderr: Int32)
    {
        var stdinPipe: [Int32] = [-1, -1]
        var stdoutPipe: [Int32] = [-1, -1]
        var stderrPipe: [Int32] = [-1, -1]
        func closeAll() {
            for fd in stdinPipe + stdoutPipe + stderrPipe where fd >= 0 { close(fd) }
        }
        guard pipe(&stdinPipe) == 0, passStdout || pipe(&stdoutPipe) == 0, pipe(&stderrPipe) == 0 else {
            let reason = errnoText()
            closeAll()
            throw SpawnError(description: "cannot create pipes: \(reason)")
        }
        for fd in stdinPipe + stdoutPipe + stderrPipe where fd >= 0 { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        posix_spawn_file_actions_adddup2(&actions, stdinPipe[0], 0)
        if !passStdout { posix_spawn_file_actions_adddup2(&actions, stdoutPipe[1], 1) }
        posix_spawn_file_actions_adddup2(&actions, stderrPipe[1], 2)

        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        // Its own process group (so the whole group can be killed), default signal
        // dispositions (this process ignores SIGPIPE, SIGINT and SIGTERM) and an empty mask.
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK))
        posix_spawnattr_setpgroup(&attributes, 0)
        var defaults = sigset_t()
        sigemptyset(&defaults)
        for signal in [SIGPIPE, SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGCHLD, SIGUSR1, SIGUSR2, SIGALRM] {
            sigaddset(&defaults, signal)
        }
        posix_spawnattr_setsigdefault(&attributes, &defaults)
        var mask = sigset_t()
        sigemptyset(&mask)
        posix_spawnattr_setsigmask(&attributes, &mask)

        let argv: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) } + [nil]
        defer { for pointer in argv { free(pointer) } }
        let envp: [UnsafeMutablePointer<CChar>?]? =
            environment.isEmpty
            ? nil
            : ProcessInfo.processInfo.environment.merging(environment) { _, new in new }
                .map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer { for pointer in envp ?? [] { free(pointer) } }
        var pid: pid_t = 0
        let status =
            if let envp {
                posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, envp)
            } else {
                posix_spawnp(&pid, arguments[0], &actions, &attributes, argv, environ)
            }
        close(stdinPipe[0])
        if stdoutPipe[1] >= 0 { close(stdoutPipe[1]) }
        close(stderrPipe[1])
        guard status == 0 else {
            close(stdinPipe[1])
            if stdoutPipe[0] >= 0 { close(stdoutPipe[0]) }
            close(stderrPipe[0])
            throw SpawnError(description: String(cString: strerror(status)))
        }
        _ = fcntl(stdinPipe[1], F_SETFL, fcntl(stdinPipe[1], F_GETFL) | O_NONBLOCK)
        return (pid, stdinPipe[1], stdoutPipe[0], stderrPipe[0])
    }

    fileprivate static func errnoText() -> String { String(cString: strerror(errno)) }
}

/// The blocking side of one run, on its own thread: feeds stdin, drains stdout and stderr,
/// reaps the child.
private final class Pump: @unchecked Sendable {
    let process: HandlerProcess
    let input: [UInt8]
    var stdinFD: Int32
    var stdoutFD: Int32
    var stderrFD: Int32
    let outputLimit: Int
    let stderrPrefix: String

    var written = 0
    var stdout: [UInt8] = []
    var overflowed = false
    var stderrLine: [UInt8] = []
    var firstStderrLine: String?
    var reaped: Int32?

    /// A stderr line longer than this is passed on in pieces.
    static let longestStderrLine = 64 * 1024

    init(
        process: HandlerProcess, input: [UInt8], stdinFD: Int32, stdoutFD: Int32, stderrFD: Int32,
        outputLimit: Int, stderrPrefix: String
    ) {
        self.process = process
        self.input = input
        self.stdinFD = stdinFD
        self.stdoutFD = stdoutFD
        self.stderrFD = stderrFD
        self.outputLimit = outputLimit
        self.stderrPrefix = stderrPrefix
    }

    func run() {
        if input.isEmpty { closeStdin() }
        while stdoutFD >= 0 || stderrFD >= 0 {
            var fds: [pollfd] = []
            if stdinFD >= 0 { fds.append(pollfd(fd: stdinFD, events: Int16(POLLOUT), revents: 0)) }
            if stdoutFD >= 0 { fds.append(pollfd(fd: stdoutFD, events: Int16(POLLIN), revents: 0)) }
            if stderrFD >= 0 { fds.append(pollfd(fd: stderrFD, events: Int16(POLLIN), revents: 0)) }
            // A timeout, so that a child that exited while something it started keeps a pipe
            // open is noticed (and that straggler killed).
            let ready = poll(&fds, nfds_t(fds.count), 50)
            if ready < 0 && errno != EINTR { break }
            for entry in fds where entry.revents != 0 {
                if entry.fd == stdinFD {
                    feedStdin()
                } else if entry.fd == stdoutFD {
                    readStdout()
                } else if entry.fd == stderrFD {
                    readStderr()
                }
            }
            if reaped == nil, let status = reap(options: WNOHANG) {
                reaped = status
                // Anything left in its group only keeps the pipes open: end it.
                kill(-process.pid, SIGKILL)
            }
        }
        closeStdin()
        flushStderrLine(final: true)
        let status = reaped ?? reap(options: 0) ?? 0
        let termination: HandlerProcess.Outcome.Termination =
            status & 0x7f == 0 ? .exited((status >> 8) & 0xff) : .signaled(status & 0x7f)
        process.complete(
            HandlerProcess.Outcome(
                termination: termination, stdout: stdout, overflowed: overflowed, firstStderrLine: firstStderrLine))
    }

    /// The child's wait status, or nil when it has not exited (WNOHANG) or cannot be waited for.
    private func reap(options: Int32) -> Int32? {
        var status: Int32 = 0
        while true {
            let result = waitpid(process.pid, &status, options)
            if result == process.pid { return status }
            if result < 0 && errno == EINTR { continue }
            return nil
        }
    }

    private func feedStdin() {
        let count = input.withUnsafeBytes { bytes in
            write(stdinFD, bytes.baseAddress! + written, input.count - written)
        }
        if count > 0 {
            written += count
            if written == input.count { closeStdin() }
        } else if count < 0 && errno != EAGAIN && errno != EINTR {
            // EPIPE: the command does not read its stdin; that is its business.
            closeStdin()
        }
    }

    private func closeStdin() {
        guard stdinFD >= 0 else { return }
        close(stdinFD)
        stdinFD = -1
    }

    private func readStdout() {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        let count = buffer.withUnsafeMutableBytes { read(stdoutFD, $0.baseAddress!, $0.count) }
        if count < 0 && (errno == EINTR || errno == EAGAIN) { return }
        guard count > 0 else {
            close(stdoutFD)
            stdoutFD = -1
            return
        }
        if stdout.count + count > outputLimit {
            stdout.append(contentsOf: buffer[0..<(outputLimit - stdout.count)])
            overflowed = true
            close(stdoutFD)
            stdoutFD = -1
            process.terminate()
            return
        }
        stdout.append(contentsOf: buffer[0..<count])
    }

    private func readStderr() {
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        let count = buffer.withUnsafeMutableBytes { read(stderrFD, $0.baseAddress!, $0.count) }
        if count < 0 && (errno == EINTR || errno == EAGAIN) { return }
        guard count > 0 else {
            close(stderrFD)
            stderrFD = -1
            return
        }
        for byte in buffer[0..<count] {
            if byte == UInt8(ascii: "\n") {
                flushStderrLine(final: false)
            } else {
                stderrLine.append(byte)
                if stderrLine.count >= Self.longestStderrLine { flushStderrLine(final: false) }
            }
        }
    }

    /// Passes one stderr line on with the prefix; the first one is kept for the error reply.
    private func flushStderrLine(final: Bool) {
        if final && stderrLine.isEmpty { return }
        var line = stderrLine
        stderrLine.removeAll(keepingCapacity: true)
        if line.last == UInt8(ascii: "\r") { line.removeLast() }
        let text = String(decoding: line, as: UTF8.self)
        if firstStderrLine == nil && !text.isEmpty { firstStderrLine = text }
        try? FileHandle.standardError.write(contentsOf: Data((stderrPrefix + text + "\n").utf8))
    }
}
