import ArgumentParser
import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TradewireBus
import TradewireCluster
import TradewireHTTP
import TradewireJSON
import TradewireJournal
import TradewirePipeline
import TradewireRPC
import TradewireServer
import TradewireTrading
import UnixSignals

#if canImport(Glibc)
    import Glibc
#endif

/// `tradewired`: the supervisor daemon (PROTOCOL §7).
@main
struct Tradewired: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tradewired",
        abstract: "The tradewire supervisor: event bus, trading pipeline and JSON-RPC 2.0 on a Unix socket.",
        discussion: """
            Settings are layered: defaults, then --config FILE (JSON), then environment variables \
            (SYMBOLS, LOOP_INTERVAL_SECONDS, USE_ASYNC_ORCHESTRATOR, RISK_*, QUANT_*, TRADEWIRE_SOCKET), \
            then these flags.

            Examples:
              tradewired                                  # simulated data, paper broker, async mode
              tradewired --loop --interval 5 --symbols SPY,QQQ,IWM
              tradewired --mode sync --data-provider csv:./data --socket /tmp/tw.sock
            Exit codes: 0 clean stop, 1 fatal error, 2 bad usage or another daemon on the socket.
            """,
        version: Daemon.version)

    @Option(
        help:
            "Socket path (default: TRADEWIRE_SOCKET, $XDG_RUNTIME_DIR/tradewire.sock, /tmp/tradewire-$UID/tradewire.sock)."
    )
    var socket: String?

    @Option(name: .customLong("socket-mode"), help: "Octal permission bits of the socket file: 600 or 660.")
    var socketMode: String = "600"

    @Option(help: "Orchestrator: async (event-driven) or sync (sequential).")
    var mode: String?

    @Flag(help: "Start the continuous loop at boot.")
    var loop = false

    @Option(help: "Loop interval in seconds: 0.1...86400 (default 60).")
    var interval: String?

    @Option(help: "Comma-separated symbols (default AAPL,MSFT,GOOGL).")
    var symbols: String?

    @Option(name: .customLong("data-provider"), help: "simulated or csv:DIR (one SYMBOL.csv per symbol).")
    var dataProvider: String?

    @Option(help: "Seed of the simulated market data: 0...18446744073709551615 (default 42).")
    var seed: String?

    @Option(name: .customLong("history-capacity"), help: "Events kept in history: 1...10000000 (default 1000).")
    var historyCapacity: String?

    @Option(
        name: .customLong("data-dir"),
        help:
            "The journal's directory (SQLite, WAL; created 0700). Default: TRADEWIRE_DATA_DIR, else $XDG_STATE_HOME/tradewire, else $HOME/.local/state/tradewire."
    )
    var dataDir: String?

    @Flag(
        help:
            "Keep everything in memory (no journal: a restart starts from nothing), even when TRADEWIRE_DATA_DIR is set."
    )
    var ephemeral = false

    @Option(
        help: ArgumentHelp(
            "Join a cluster on PostgreSQL: a URI (postgresql://user@host:5432/db) or key=value string (host=/run/postgresql dbname=tw). Default: TRADEWIRE_CLUSTER.",
            valueName: "conninfo"))
    var cluster: String?

    @Option(
        name: .customLong("node-id"),
        help:
            "This node's id in the cluster (letters, digits, . _ -; at most 64), unique among live nodes. Default: the host name."
    )
    var nodeID: String?

    @Option(help: "Journal durability: normal (survives a crash of the daemon) or full (also a power loss).")
    var fsync: String = "normal"

    @Option(
        name: .customLong("retain-events"),
        help: "Journal retention: keep at most this many events, 1...1000000000000 (default 10000000).")
    var retainEvents: String = "\(JournalRetention.defaultEvents)"

    @Option(
        name: .customLong("retain-days"),
        help: "Journal retention: drop events older than this many days, 1...36500 (default 30).")
    var retainDays: String = "\(JournalRetention.defaultDays)"

    @Option(
        name: .customLong("max-message-bytes"),
        help: "Longest message accepted, in bytes: 1...67108864 (default 1048576).")
    var maxMessageBytes: String = "1048576"

    @Option(
        name: .customLong("max-connections"),
        help:
            "Clients served at once: 1...\(ServerConfiguration.maximumConnectionsLimit) (default 4096); one more gets a -32001 line and is closed."
    )
    var maxConnections: String = "4096"

    @Option(
        name: .customLong("threads"),
        help:
            "Event-loop threads serving the socket: 1...\(ServerConfiguration.maximumThreads) (default \(ServerConfiguration.defaultThreads), the number of cores)."
    )
    var threads: String = "\(ServerConfiguration.defaultThreads)"

    @Option(
        name: .customLong("publish-rate"),
        help:
            "Publishes per second per connection, N or N/BURST (token bucket; default: no limit). Over it: -32002 rate_limited with retry_after_ms, nothing recorded."
    )
    var publishRate: String?

    @Option(
        name: .customLong("halt-on-drawdown"),
        help: ArgumentHelp(
            "Halt trading when equity falls PCT percent below its running peak: (0, 100] (default: off).",
            valueName: "pct"))
    var haltOnDrawdown: String?

    @Option(
        name: .customLong("halt-on-errors"),
        help: ArgumentHelp(
            "Halt trading after N iterations in a row with errors: 1...1000000 (default: off).", valueName: "n"))
    var haltOnErrors: String?

    @Option(
        help: ArgumentHelp(
            "Serve read-only HTTP on ADDR:PORT: /metrics, /healthz, /events (Server-Sent Events), / (default: off). A loopback address (127.0.0.0/8, [::1], localhost) unless --http-allow-remote; port 0 picks a free one.",
            valueName: "addr:port"))
    var http: String?

    @Flag(
        name: .customLong("http-allow-remote"),
        help: "Let --http listen on any address (whoever reaches it reads the metrics and every event).")
    var httpAllowRemote = false

    @Option(name: .customLong("allow-uid"), help: "Another uid allowed to connect (repeatable).")
    var allowUID: [UInt32] = []

    @Option(name: .customLong("allow-gid"), help: "A gid whose members may connect (repeatable).")
    var allowGID: [UInt32] = []

    @Option(help: "JSON config file (keys: the environment names in lower case, plus mode, data_provider, seed, ...).")
    var config: String?

    @Option(name: .customLong("log-level"), help: "trace, debug, info, notice, warning or error.")
    var logLevel: String = "info"

    @Option(name: .customLong("log-format"), help: "text or json.")
    var logFormat: String = "text"

    func validate() throws {
        guard ["text", "json"].contains(logFormat) else { throw ValidationError("--log-format must be text or json") }
        guard Logger.Level(rawValue: logLevel) != nil else {
            throw ValidationError("--log-level must be one of trace, debug, info, notice, warning, error")
        }
        _ = try Self.integer(maxMessageBytes, "--max-message-bytes", 1...ServerConfiguration.maximumMessageLimit)
        _ = try Self.integer(maxConnections, "--max-connections", 1...ServerConfiguration.maximumConnectionsLimit)
        _ = try Self.integer(threads, "--threads", 1...ServerConfiguration.maximumThreads)
        guard let parsedMode = UInt16(socketMode, radix: 8), parsedMode & ~0o660 == 0, parsedMode & 0o600 == 0o600
        else {
            throw ValidationError("--socket-mode must be 600 or 660 (octal)")
        }
        if let mode, OrchestratorMode(rawValue: mode) == nil { throw ValidationError("--mode must be async or sync") }
        if let publishRate, case .failure(let error) = PublishRate.parse(publishRate) {
            throw ValidationError(error.description)
        }
        if let http, case .failure(let error) = HTTPAddress.parse(http, allowRemote: httpAllowRemote) {
            throw ValidationError(error.description)
        }
        if httpAllowRemote && http == nil { throw ValidationError("--http-allow-remote needs --http ADDR:PORT") }
        guard JournalSync(rawValue: fsync) != nil else { throw ValidationError("--fsync must be normal or full") }
        if ephemeral && dataDir != nil { throw ValidationError("give --data-dir or --ephemeral, not both") }
        if cluster != nil && dataDir != nil {
            throw ValidationError(
                "a cluster node keeps its events in the cluster database: give --cluster or --data-dir, not both")
        }
        if let cluster { _ = try Self.clusterInfo(cluster) }
        if let nodeID { _ = try Self.validNodeID(nodeID) }
        if let dataDir, dataDir.isEmpty { throw ValidationError("--data-dir must not be empty") }
        _ = try Self.integer(retainEvents, "--retain-events", 1...1_000_000_000_000)
        _ = try Self.integer(retainDays, "--retain-days", 1...36_500)
        // --interval, --seed and --history-capacity go through the configuration's own parser
        // (the same ranges and messages as the config file and the environment).
        var probe = PipelineConfiguration()
        do {
            if let interval { try probe.set("loop_interval_seconds", interval, source: "--interval") }
            if let seed { try probe.set("seed", seed, source: "--seed") }
            if let historyCapacity { try probe.set("history_capacity", historyCapacity, source: "--history-capacity") }
            try Self.applyHaltTriggers(to: &probe, drawdown: haltOnDrawdown, errors: haltOnErrors)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// The kill switch's triggers from their flags (the configuration's parser: the same
    /// ranges and messages as HALT_ON_DRAWDOWN_PCT and HALT_ON_ERRORS).
    static func applyHaltTriggers(to settings: inout PipelineConfiguration, drawdown: String?, errors: String?)
        throws(ConfigurationError)
    {
        if let drawdown { try settings.set("halt_on_drawdown_pct", drawdown, source: "--halt-on-drawdown") }
        if let errors { try settings.set("halt_on_errors", errors, source: "--halt-on-errors") }
    }

    /// An integer flag within its documented range (a usage error otherwise: exit 2).
    static func integer(_ text: String, _ flag: String, _ range: ClosedRange<Int>) throws -> Int {
        guard let value = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(value) else {
            throw ValidationError(
                "\(flag) must be an integer in \(range.lowerBound)...\(range.upperBound), got \"\(text)\"")
        }
        return value
    }

    /// Parses by hand so that usage errors exit 2, as the protocol's command line requires.
    static func main() async {
        let command: Tradewired
        do {
            let parsed = try parseAsRoot()
            guard let ours = parsed as? Tradewired else {
                // `--help` and `help` come back as ArgumentParser's own help command.
                print(helpMessage())
                Foundation.exit(0)
            }
            command = ours
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                print(fullMessage(for: error))
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data((fullMessage(for: error) + "\n").utf8))
            Foundation.exit(2)
        }
        do {
            try await command.serve()
            Foundation.exit(0)
        } catch let error as StartupError {
            FileHandle.standardError.write(Data("tradewired: \(error.message)\n".utf8))
            Foundation.exit(error.exitCode)
        } catch {
            FileHandle.standardError.write(Data("tradewired: \(error)\n".utf8))
            Foundation.exit(1)
        }
    }

    struct StartupError: Error {
        let message: String
        let exitCode: Int32
    }

    func serve() async throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        let json = logFormat == "json"
        LoggingSystem.bootstrap { label in
            var handler: any LogHandler =
                json ? JSONLogHandler(label: label) : StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        let logger = Logger(label: "tradewired")
        let environment = ProcessInfo.processInfo.environment
        // Metrics are recorded only when something serves them (before the bus exists, so
        // every metric it creates reports to this registry).
        let httpAddress = try http.map { try HTTPAddress.parse($0, allowRemote: httpAllowRemote).get() }
        let metricsRegistry = httpAddress.map { _ in TradewireMetricsFactory.bootstrap() }

        var settings: PipelineConfiguration
        do {
            settings = try PipelineConfiguration.load(configFile: config, environment: environment)
            if let mode { try settings.set("mode", mode, source: "--mode") }
            if let interval { try settings.set("loop_interval_seconds", interval, source: "--interval") }
            if let symbols { try settings.set("symbols", symbols, source: "--symbols") }
            if let dataProvider { try settings.set("data_provider", dataProvider, source: "--data-provider") }
            if let seed { try settings.set("seed", seed, source: "--seed") }
            if let historyCapacity {
                try settings.set("history_capacity", historyCapacity, source: "--history-capacity")
            }
            try Self.applyHaltTriggers(to: &settings, drawdown: haltOnDrawdown, errors: haltOnErrors)
        } catch {
            throw StartupError(message: error.description, exitCode: 2)
        }

        let inherited = Self.systemdSocket(environment: environment)
        // Under socket activation the inherited socket's own path is the one to report.
        let socketPath =
            inherited.flatMap(Self.boundPath(of:)) ?? SocketPath.resolve(explicit: socket, environment: environment)
        var serverConfiguration = ServerConfiguration(socketPath: socketPath)
        serverConfiguration.socketMode = UInt16(socketMode, radix: 8) ?? 0o600
        serverConfiguration.maxMessageBytes = try Self.integer(
            maxMessageBytes, "--max-message-bytes", 1...ServerConfiguration.maximumMessageLimit)
        serverConfiguration.publishRate = try publishRate.map { try PublishRate.parse($0).get() }
        serverConfiguration.maxConnections = try Self.integer(
            maxConnections, "--max-connections", 1...ServerConfiguration.maximumConnectionsLimit)
        Self.raiseFileLimit(toServe: serverConfiguration.maxConnections, logger: logger)
        serverConfiguration.threads = try Self.integer(threads, "--threads", 1...ServerConfiguration.maximumThreads)
        serverConfiguration.allowedUIDs = Set(allowUID)
        serverConfiguration.allowedGIDs = Set(allowGID)
        serverConfiguration.inheritedSocket = inherited

        let busLogger = Logger(label: "tradewire.bus")
        // TRADEWIRE_CLUSTER is a default: an explicit --data-dir or --ephemeral runs alone.
        let clusterText =
            cluster
            ?? (ephemeral || dataDir != nil ? nil : environment["TRADEWIRE_CLUSTER"].flatMap { $0.isEmpty ? nil : $0 })
        var member: ClusterMember?
        var clusterStart = 0
        if let clusterText {
            let info: ClusterConnectionInfo
            do { info = try ClusterConnectionInfo(parsing: clusterText) } catch {
                throw StartupError(message: (cluster == nil ? "TRADEWIRE_CLUSTER: " : "") + error.message, exitCode: 2)
            }
            let id = try Self.validNodeID(nodeID ?? ProcessInfo.processInfo.hostName)
            let joining = ClusterMember(info: info, nodeID: id, logger: Logger(label: "tradewire.cluster"))
            do {
                clusterStart = try await joining.join()
            } catch {
                joining.journal.database.close()
                throw StartupError(message: error.message, exitCode: error.kind == .duplicateNode ? 2 : 1)
            }
            member = joining
        }
        var journal: SQLiteJournal?
        if !ephemeral && member == nil {
            guard let directory = DataDirectory.resolve(explicit: dataDir, environment: environment) else {
                throw StartupError(
                    message:
                        "no data directory: give --data-dir DIR, set TRADEWIRE_DATA_DIR or HOME, or run --ephemeral",
                    exitCode: 2)
            }
            do {
                journal = try SQLiteJournal.open(
                    directory: directory, sync: JournalSync(rawValue: fsync) ?? .normal,
                    logger: Logger(label: "tradewire.journal"))
            } catch {
                let code: Int32 = error.kind == .io ? 1 : 2
                throw StartupError(message: error.message, exitCode: code)
            }
        }
        let retention = JournalRetentionPolicy(
            maximumEvents: try Self.integer(retainEvents, "--retain-events", 1...1_000_000_000_000),
            maximumDays: try Self.integer(retainDays, "--retain-days", 1...36_500))
        let bus: EventBus
        if let member {
            bus = EventBus.sequenced(
                by: member.sequencer(), after: clusterStart, historyCapacity: settings.historyCapacity,
                logger: busLogger,
                dispatchScope: { ServerDispatch.batchingWakeups($0) },
                fencing: { type, metadata in member.fence(type: type, metadata: metadata) })
        } else if let journal {
            do {
                // An event loop commits its round's publishes itself (no hand-off to the
                // writer thread and back), unless each commit waits for the disk: a loop must
                // not stall its other connections on fdatasync, the writer thread takes those.
                let loopsCommit = JournalSync(rawValue: fsync) != .full
                bus = try EventBus.journaled(
                    journal, historyCapacity: settings.historyCapacity, logger: busLogger,
                    dispatchScope: { ServerDispatch.batchingWakeups($0) },
                    callerCommits: { loopsCommit && ServerDispatch.commitsAtEndOfReadRound($0) })
            } catch {
                throw StartupError(message: error.message, exitCode: 1)
            }
        } else {
            bus = EventBus(historyCapacity: settings.historyCapacity, logger: busLogger)
        }
        // Iteration ids carry a token new at every start, so they never repeat across restarts.
        // Order ids continue the journal's count (paper-000043 after paper-000042); without a
        // journal the count restarts, so they carry the token too.
        let bootToken = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        let agents = TradingAgents(
            config: settings.trading, provider: settings.dataProvider.makeProvider(seed: settings.seed),
            logger: Logger(label: "tradewire.agents"), orderIDPrefix: journal == nil ? "paper-\(bootToken)" : "paper")
        let pipelineLogger = Logger(label: "tradewire.pipeline")
        let tradingState = TradingStateController(
            agents: agents, bus: bus, journal: journal, triggers: settings.haltTriggers, logger: pipelineLogger)
        let stages = StageRegistry(logger: Logger(label: "tradewire.stages"))
        let timeout = Duration.milliseconds(Int(settings.iterationTimeoutSeconds * 1000))
        let orchestrator: any Orchestrator =
            switch settings.mode {
            case .async:
                EventDrivenOrchestrator(
                    bus: bus, agents: agents, stageHandlers: stages, defaultSymbols: settings.symbols,
                    defaultTimeout: timeout,
                    iterationIDPrefix: bootToken, tradingState: tradingState, logger: pipelineLogger)
            case .sync:
                SequentialOrchestrator(
                    bus: bus, agents: agents, stageHandlers: stages, defaultSymbols: settings.symbols,
                    defaultTimeout: timeout,
                    iterationIDPrefix: bootToken, tradingState: tradingState, logger: pipelineLogger)
            }
        let pipelineLoop = PipelineLoop(
            orchestrator: orchestrator, intervalSeconds: settings.loopIntervalSeconds, logger: pipelineLogger)
        let startingCash = Money(dollars: settings.trading.startingCash)
        if let journal {
            do {
                let recovered = try await PipelineRecovery.recover(
                    journal: journal, bus: bus, agents: agents, orchestrator: orchestrator, loop: pipelineLoop,
                    startingCash: startingCash, logger: Logger(label: "tradewire.recovery"))
                // A halt survives a restart (PROTOCOL §12), before anything can trade.
                tradingState.restore(recovered: recovered.tradingState)
            } catch {
                throw StartupError(message: "cannot recover from the journal: \(error)", exitCode: 1)
            }
        }
        let daemon = Daemon(
            pipeline: PipelineHost(
                bus: bus, orchestrator: orchestrator, loop: pipelineLoop, agents: agents, journal: journal,
                retention: retention, tradingState: tradingState),
            stages: stages,
            configuration: serverConfiguration, logger: Logger(label: "tradewire.server"))
        daemon.pipeline.restoreStageGroups(into: stages)
        do {
            try daemon.consumers.restore()
        } catch {
            throw StartupError(message: "cannot restore the consumers from the journal: \(error)", exitCode: 1)
        }
        let server = TradewireServer(daemon: daemon) { path in
            // A plain line whatever the log level or format: scripts wait for it.
            FileHandle.standardError.write(Data("listening on \(path)\n".utf8))
        }
        do {
            try await server.bind()
        } catch let error as SocketFileError {
            let code: Int32 =
                switch error {
                case .anotherDaemon, .notASocket, .pathTooLong, .missingDirectory: 2
                case .cannotPrepare: 1
                }
            throw StartupError(message: error.description, exitCode: code)
        } catch {
            throw StartupError(message: "cannot listen on \(socketPath): \(error)", exitCode: 1)
        }
        logger.info(
            "daemon.starting",
            metadata: [
                "mode": "\(settings.mode.rawValue)", "symbols": "\(settings.symbols.joined(separator: ","))",
                "data.provider": "\(settings.dataProvider)", "seed": "\(settings.seed)", "pid": "\(getpid())",
                "allocator": "\(Allocator.description)",
            ])
        // The HTTP server comes first: services stop in reverse order, so it answers `/healthz`
        // with 503 while the socket server drains, then stops (ending its event streams).
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let httpAddress, let metricsRegistry {
            let httpServer = HTTPServer(
                daemon: daemon, configuration: HTTPConfiguration(address: httpAddress), registry: metricsRegistry,
                tradingState: { daemon.pipeline.agents.tradingSwitch.current.state.gaugeValue },
                onListening: { address in
                    // A plain line whatever the log level or format, like `listening on PATH`.
                    FileHandle.standardError.write(Data("http listening on \(address)\n".utf8))
                })
            // A failure to listen stops the daemon gracefully (exit 1, naming the address).
            services.append(
                .init(
                    service: httpServer, successTerminationBehavior: .gracefullyShutdownGroup,
                    failureTerminationBehavior: .gracefullyShutdownGroup))
        }
        services.append(.init(service: server))
        let group = ServiceGroup(
            configuration: .init(services: services, gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
        daemon.onShutdownRequest { _ in Task { await group.triggerGracefulShutdown() } }
        var membership: Task<Void, Never>?
        if let member {
            // Only the leader trades: the loop runs while this node leads, and stops the
            // moment it does not (PROTOCOL §13).
            // A new leader trades once its book is the shared journal's (`takeover.ready`).
            let wiring = ClusterWiring(
                member: member, daemon: daemon, tradingState: tradingState, startingCash: startingCash,
                defaultTimeout: timeout, startLoop: loop, retention: retention, logger: logger)
            wiring.install()
            membership = Task { await wiring.run(bus: bus, after: clusterStart) }
        } else if loop {
            _ = await daemon.pipeline.startLoop()
        } else if await daemon.pipeline.resumeLoop() {
            logger.notice("pipeline.loop.resumed")
        }
        let pruning = journal.map { journal in
            Task.detached { await Self.prune(journal, retention, startingCash: startingCash, logger: logger) }
        }
        try await group.run()
        // What this node's members had out goes back to the cluster at once.
        await daemon.sharedConsumers?.close()
        pruning?.cancel()
        _ = await pruning?.value
        // Everything published before the stop is committed and delivered, the consumers'
        // positions are saved, then the data dir is released.
        if membership != nil { _ = await daemon.pipeline.loop.stop() }
        // Off the cooperative pool: a cluster's writer thread waits on tasks that need it.
        await Self.offThePool { bus.close() }
        membership?.cancel()
        await membership?.value
        daemon.consumers.close()
        journal?.close()
        logger.info("daemon.stopped")
    }

    /// Runs blocking work on a thread of its own and waits for it without holding one of
    /// Swift concurrency's few threads.
    static func offThePool(_ work: @escaping @Sendable () -> Void) async {
        await withCheckedContinuation { (done: CheckedContinuation<Void, Never>) in
            let thread = Thread {
                Thread.current.name = "tradewire.close"  // from inside: see JournalWriter's thread
                work()
                done.resume()
            }
            thread.start()
        }
    }

    /// `--cluster`'s connection string, or a usage error naming what is wrong.
    static func clusterInfo(_ text: String) throws -> ClusterConnectionInfo {
        do { return try ClusterConnectionInfo(parsing: text) } catch { throw ValidationError(error.message) }
    }

    /// A node id: 1…64 of letters, digits, `.`, `_` and `-`.
    static func validNodeID(_ id: String) throws -> String {
        let allowed = id.utf8.allSatisfy { byte in
            (byte >= 0x30 && byte <= 0x39) || (byte | 0x20 >= 0x61 && byte | 0x20 <= 0x7a) || byte == 0x2e
                || byte == 0x5f
                || byte == 0x2d
        }
        guard (1...64).contains(id.utf8.count), allowed else {
            throw ValidationError("--node-id must be 1…64 letters, digits, '.', '_' or '-', got '\(id)'")
        }
        return id
    }

    /// Applies the journal's retention every second, oldest events first (in chunks, so
    /// appends go on meanwhile), until cancelled. Events are removed only once a book
    /// checkpoint covers them (written at most once a minute), so recovery never needs them:
    /// retention may lag by up to a minute.
    static func prune(
        _ journal: any EventJournal, _ retention: JournalRetentionPolicy, startingCash: Money, logger: Logger
    ) async {
        var checkpointSeq: Int?
        var lastCheckpoint: ContinuousClock.Instant?
        while !Task.isCancelled {
            try? await Task.sleep(for: .seconds(1))
            guard !Task.isCancelled else { return }
            let cutoff = Date().addingTimeInterval(-Double(retention.maximumDays) * 86_400)
            do {
                guard
                    let boundary = try journal.pruneBoundary(
                        keepingAtMost: retention.maximumEvents, olderThan: cutoff)
                else { continue }
                if checkpointSeq.map({ $0 < boundary - 1 }) ?? true,
                    lastCheckpoint.map({ ContinuousClock.now - $0 >= .seconds(60) }) ?? true
                {
                    try PipelineRecovery.checkpoint(journal, startingCash: startingCash, through: boundary - 1)
                    checkpointSeq = boundary - 1
                    lastCheckpoint = .now
                    logger.debug("journal.checkpoint.saved", metadata: ["journal.checkpoint_seq": "\(boundary - 1)"])
                }
                guard let covered = checkpointSeq else { continue }
                let removed = try journal.prune(below: min(boundary, covered + 1))
                if removed > 0 { logger.debug("journal.pruned", metadata: ["events": "\(removed)"]) }
            } catch {
                logger.error("journal.prune.failed", metadata: ["error": "\(error)"])
            }
        }
    }

    /// Raises the soft open-files limit to the hard one (each client is one descriptor), and
    /// warns when even that cannot hold `--max-connections` plus the daemon's own files.
    static func raiseFileLimit(toServe connections: Int, logger: Logger) {
        var limit = rlimit()
        guard getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit) == 0 else { return }
        if limit.rlim_cur < limit.rlim_max {
            var raised = limit
            raised.rlim_cur = limit.rlim_max
            if setrlimit(Int32(RLIMIT_NOFILE.rawValue), &raised) == 0 { limit = raised }
        }
        let needed = rlim_t(connections + 64)
        if limit.rlim_cur < needed {
            logger.warning(
                "daemon.fd_limit.low",
                metadata: ["fd.limit": "\(limit.rlim_cur)", "max_connections": "\(connections)"])
        } else {
            logger.debug("daemon.fd_limit", metadata: ["fd.limit": "\(limit.rlim_cur)"])
        }
    }

    /// The filesystem path a Unix socket is bound to (nil for an abstract or unnamed one).
    static func boundPath(of fd: Int32) -> String? {
        var address = sockaddr_un()
        var length = socklen_t(MemoryLayout<sockaddr_un>.size)
        let result = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        guard result == 0, address.sun_family == sa_family_t(AF_UNIX) else { return nil }
        let path = withUnsafeBytes(of: address.sun_path) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
        return path.isEmpty ? nil : path
    }

    /// The listening socket systemd passed (LISTEN_PID is us and LISTEN_FDS ≥ 1): fd 3.
    static func systemdSocket(environment: [String: String]) -> Int32? {
        guard let pid = environment["LISTEN_PID"].flatMap(Int32.init), pid == getpid(),
            let count = environment["LISTEN_FDS"].flatMap(Int.init), count >= 1
        else { return nil }
        return 3
    }
}
