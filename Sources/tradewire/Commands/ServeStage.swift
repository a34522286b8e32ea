import ArgumentParser
import Foundation
import TradewireClient
import TradewireJSON
import TradewireRPC

#if canImport(Glibc)
    import Glibc
#endif

extension Tradewire {
    struct ServeStage: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "serve-stage",
            abstract: "Serve a pipeline stage with a command: each call's params on its stdin, its stdout the result.",
            discussion: """
                Registers this connection as a member of the stage group STAGE/NAME (register_stage), \
                then runs COMMAND once per stage.handle call: no shell, the arguments as given, COMMAND \
                looked up on PATH. The call's params object ({stage, name, mode, iteration, deadline, \
                dry_run, input, output, account}) is written to its stdin as one line of compact JSON, \
                then stdin is closed. Its stdout, parsed as JSON, is the reply's result: for an `after` \
                group the revised `output`, for a `replace` group the stage's output. A non-zero exit, a \
                signal, stdout that is not JSON or longer than --max-output bytes gives the error reply \
                {"code": -32000, "message": "command exited 3: <first stderr line>", "data": {"type": \
                "handler_error"}}, and the group's --on-failure policy applies. The command's stderr is \
                passed through, each line prefixed with the call id ([c-12] …).

                When the call's deadline (the earlier of its `deadline` and --timeout) passes, or the \
                daemon cancels the call, the command's process group gets SIGTERM, then SIGKILL a \
                second later, and no reply is sent. At most --concurrency commands run at once.

                A lost connection or a daemon that shuts down: reconnect (0.1 s doubling to 5 s) and \
                register again. SIGINT or SIGTERM: unregister (unless the group is durable), kill the \
                commands still running and exit 0. Exit 2 when the daemon refuses the registration \
                (bad options, stage_conflict), 3 when it cannot be reached at start.

                Examples:
                  # jq risk veto: reject approved BUYs over $10,000 notional
                  tradewire serve-stage risk --name jq-veto -- jq -c '.output | map(
                    if .approved and .action == "BUY" and .qty * .price > 10000
                    then .approved = false | .rejection_reason = "notional over 10000"
                    else . end)'
                  # a Python strategy instead of the built-in one (built-in on failure)
                  tradewire serve-stage strategy --name ma-cross --mode replace \\
                    --on-failure fallback --timeout 2000 -- python3 ma_cross.py
                  # a data provider: {"input":{"symbols":[...]}} in, {SYMBOL: MarketData} out
                  tradewire serve-stage data --name folder --mode replace --durable \\
                    --on-failure fallback -- ./folder-provider.sh /srv/bars
                """)

        @OptionGroup var connection: ConnectionOptions

        @Argument(help: ArgumentHelp("The stage: data, strategy, quant, risk or execution.", valueName: "stage"))
        var stage: StageKind

        @Option(help: ArgumentHelp("Group name: 1-64 of A-Z a-z 0-9 _ . : -.", valueName: "name"))
        var name: String

        @Option(help: ArgumentHelp("after (revise the stage's output) or replace (produce it).", valueName: "mode"))
        var mode: StageModeOption?

        @Option(
            help: ArgumentHelp(
                "Per-call timeout in milliseconds, 1...300000 (default: the group's, else 5000).", valueName: "ms"))
        var timeout: Int?

        @Option(
            help: ArgumentHelp(
                "What a failed call means: skip, fallback (replace only) or fail_closed (default: fail_closed for "
                    + "risk and execution, else skip).", valueName: "policy"))
        var onFailure: FailurePolicyOption?

        @Option(help: ArgumentHelp("Commands run at once, 1...1024 (default 1).", valueName: "k"))
        var concurrency: Int?

        @Flag(help: "Keep the group when its last member goes (its calls then fail with no_member).")
        var durable = false

        @Option(
            help: ArgumentHelp(
                "Most stdout bytes taken as a result (default 1048576, the daemon's default message size).",
                valueName: "bytes"))
        var maxOutput = 1 << 20

        @Argument(
            parsing: .postTerminator,
            help: ArgumentHelp("The command to run for each call, after `--`.", valueName: "command"))
        var command: [String] = []

        func validate() throws {
            guard (1...64).contains(name.count), name.allSatisfy(Self.isNameCharacter) else {
                throw ValidationError("--name must be 1-64 characters of A-Z a-z 0-9 _ . : -.")
            }
            if let timeout, !(1...300_000).contains(timeout) {
                throw ValidationError("--timeout must be 1...300000 milliseconds.")
            }
            if let concurrency, !(1...1024).contains(concurrency) {
                throw ValidationError("--concurrency must be 1...1024.")
            }
            guard (1...(64 << 20)).contains(maxOutput) else {
                throw ValidationError("--max-output must be 1...67108864 bytes.")
            }
            guard let executable = command.first else {
                throw ValidationError(
                    "Give the command after `--`: tradewire serve-stage risk --name veto -- jq -c .output")
            }
            guard Self.findExecutable(executable) else {
                throw ValidationError(
                    executable.contains("/")
                        ? "\(executable) is not an executable file." : "\(executable) not found on PATH.")
            }
        }

        private static func isNameCharacter(_ c: Character) -> Bool {
            (c.isASCII && (c.isLetter || c.isNumber)) || "_.:-".contains(c)
        }

        /// True when `posix_spawnp` would find `name`: a path to an executable file, or an
        /// executable file in a PATH directory.
        static func findExecutable(_ name: String) -> Bool {
            if name.contains("/") { return access(name, X_OK) == 0 }
            let path = ProcessInfo.processInfo.environment["PATH"] ?? "/usr/local/bin:/usr/bin:/bin"
            return path.split(separator: ":", omittingEmptySubsequences: false).contains { directory in
                let candidate = (directory.isEmpty ? "." : String(directory)) + "/" + name
                var info = stat()
                return stat(candidate, &info) == 0 && info.st_mode & S_IFMT == S_IFREG && access(candidate, X_OK) == 0
            }
        }

        /// The register_stage params: only the options given (a member joining a group takes
        /// the group's for the rest).
        var registrationParams: JSONObject {
            var params: JSONObject = ["stage": JSONValue(stage.rawValue), "name": JSONValue(name)]
            if let mode { params["mode"] = JSONValue(mode.rawValue) }
            if let timeout { params["timeout_ms"] = JSONValue(timeout) }
            if let onFailure { params["on_failure"] = JSONValue(onFailure.rawValue) }
            if let concurrency { params["concurrency"] = JSONValue(concurrency) }
            if durable { params["durable"] = true }
            return params
        }

        func run() async throws {
            // A command that stops reading its stdin must not kill serve-stage.
            signal(SIGPIPE, SIG_IGN)
            let stop = StopSignal()
            stop.installHandlers()
            let runner = StageCommand(arguments: command, outputLimit: maxOutput, concurrency: concurrency ?? 1)
            var backoff = Backoff()
            var registeredOnce = false
            while !stop.isFired {
                let client: TradewireClient
                do {
                    client = try await TradewireClient.connect(socketPath: connection.socket)
                } catch {
                    if !registeredOnce || Self.isUntrusted(error) {
                        Console.err(CommandRunner.describe(error))
                        throw ExitStatus.cannotConnect.exitCode
                    }
                    await Self.pause(backoff.next(), unless: stop)
                    continue
                }
                let registration: JSONValue
                do {
                    registration = try await client.call(
                        "register_stage", registrationParams, timeout: CommandRunner.quickTimeout)
                } catch {
                    await client.close()
                    if case .rpc(let rpc) = error, let exit = Self.permanentFailure(rpc) {
                        Console.err(CommandRunner.describe(rpc))
                        throw exit
                    }
                    // shutting_down, overloaded, a lost connection: try again.
                    await Self.pause(backoff.next(), unless: stop)
                    continue
                }
                registeredOnce = true
                backoff.reset()
                announce(registration)
                let id = registration["registration"]?.stringValue ?? ""
                let unregister = !(registration["durable"]?.boolValue ?? durable)
                let session = StageSession(
                    client: client, command: runner,
                    timeout: .milliseconds(registration["timeout_ms"]?.intValue ?? timeout ?? 5000))
                let end = await session.run(until: stop) { end in
                    guard case .stopped = end, unregister else { return }
                    _ = try? await client.call(
                        "unregister_stage", ["registration": JSONValue(id)], timeout: .seconds(2))
                }
                await client.close()
                switch end {
                case .stopped:
                    return
                case .shutdown:
                    Console.err("tradewire: the daemon is shutting down; registering again when it is back")
                case .disconnected:
                    Console.err("tradewire: lost the connection to tradewired; reconnecting")
                }
                await Self.pause(backoff.next(), unless: stop)
            }
        }

        /// `registered risk/jq-veto as r-1 (members 1)` on stderr; with --json the whole
        /// register_stage result on stdout too.
        private func announce(_ registration: JSONValue) {
            let id = Format.cell(registration["registration"])
            let members = Format.cell(registration["members"])
            Console.err("registered \(stage.rawValue)/\(name) as \(id) (members \(members))")
            if connection.json { Console.out(JSONWriter.string(registration)) }
        }

        /// The exit for a registration the daemon will refuse again; nil when retrying may help.
        static func permanentFailure(_ error: RPCError) -> ExitCode? {
            switch error.code {
            case -32602, -32030: ExitStatus.usage.exitCode
            case -32601, -32020: ExitStatus.rpcError.exitCode
            default: nil
            }
        }

        private static func isUntrusted(_ error: ClientError) -> Bool {
            if case .untrusted = error { return true }
            return false
        }

        /// Sleeps for `duration`, or less when `stop` fires.
        static func pause(_ duration: Duration, unless stop: StopSignal) async {
            await withTaskGroup(of: Void.self) { group in
                group.addTask { try? await Task.sleep(for: duration) }
                group.addTask { await stop.wait() }
                await group.next()
                group.cancelAll()
            }
        }
    }
}

/// Reconnect delays: 0.1 s, doubling, at most 5 s.
struct Backoff {
    static let first = Duration.milliseconds(100)
    static let longest = Duration.seconds(5)
    private var current = first

    mutating func next() -> Duration {
        defer { current = min(current * 2, Self.longest) }
        return current
    }

    mutating func reset() { current = Self.first }
}

/// The pipeline stages a client can serve (PROTOCOL §9).
enum StageKind: String, CaseIterable, ExpressibleByArgument {
    case data, strategy, quant, risk, execution
}

/// `--mode`.
enum StageModeOption: String, CaseIterable, ExpressibleByArgument {
    case after, replace
}

/// `--on-failure`.
enum FailurePolicyOption: String, CaseIterable, ExpressibleByArgument {
    case skip, fallback
    case failClosed = "fail_closed"
}
