import Foundation
import Logging
import ServiceLifecycle
import Synchronization
import TradewireBus
import TradewireClient
import TradewireJSON
import TradewireJournal
import TradewirePipeline
import TradewireServer
import TradewireTesting
import TradewireTrading

/// A provider that never answers (deadline and drain tests).
struct HangingProvider: MarketDataProvider {
    var name: String { "hanging" }
    func marketData(for symbol: String, bars: Int, asOf: Date) async throws -> MarketData {
        try await Task.sleep(for: .seconds(3600))
        throw CancellationError()
    }
}

struct FailingProvider: MarketDataProvider {
    var name: String { "failing" }
    struct Down: Error {}
    func marketData(for symbol: String, bars: Int, asOf: Date) async throws -> MarketData { throw Down() }
}

private let socketCounter = Mutex(0)

/// A short socket path unique to this process and test.
func uniqueSocketPath(_ tag: String) -> String {
    let n = socketCounter.withLock { c in
        c += 1
        return c
    }
    return "/tmp/tws-\(getpid())-\(tag)-\(n).sock"
}

/// An in-process daemon on its own socket, stopped gracefully when the body ends.
func withDaemon(
    mode: OrchestratorMode = .async, provider: (any MarketDataProvider)? = nil, historyCapacity: Int = 1000,
    outboxBudget: Int = 8 << 20, maxInFlight: Int = 1024, maxMessageBytes: Int = 1 << 20,
    shutdownGrace: Duration = .seconds(10), maxConnections: Int = 4096, maxResponseBytes: Int = 64 << 20,
    storage: TestStorage? = nil, publishRate: PublishRate? = nil, _ body: (String, Daemon) async throws -> Void
) async throws {
    let path = uniqueSocketPath(mode.rawValue)
    var configuration = ServerConfiguration(socketPath: path)
    configuration.outboxBudgetBytes = outboxBudget
    configuration.maxInFlight = maxInFlight
    configuration.maxMessageBytes = maxMessageBytes
    configuration.shutdownGrace = shutdownGrace
    configuration.maxConnections = maxConnections
    configuration.maxResponseBytes = maxResponseBytes
    configuration.publishRate = publishRate
    let logger = Logger(label: "tradewire.server.tests", factory: { _ in SwiftLogNoOpLogHandler() })
    // TW_TEST_STORAGE: journal (the default) or ephemeral, like the daemon's processes.
    let storage = storage ?? TestStorage.current
    let dataDirectory = "/tmp/tw-live-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    let journal: SQLiteJournal? =
        storage == .journal ? try SQLiteJournal.open(directory: dataDirectory, sync: .normal, logger: logger) : nil
    defer {
        journal?.close()
        if journal != nil { try? FileManager.default.removeItem(atPath: dataDirectory) }
    }
    // Wired as tradewired wires it: batches delivered with coalesced wake-ups, and a read
    // round's publishes committed by its event loop.
    let bus =
        try journal.map {
            try EventBus.journaled(
                $0, historyCapacity: historyCapacity, logger: logger,
                dispatchScope: { ServerDispatch.batchingWakeups($0) },
                callerCommits: { ServerDispatch.commitsAtEndOfReadRound($0) })
        }
        ?? EventBus(historyCapacity: historyCapacity, logger: logger)
    defer { bus.close() }
    let agents = TradingAgents(
        config: TradingConfig(), provider: provider ?? SimulatedMarketDataProvider(seed: 42), logger: logger)
    let stages = StageRegistry(logger: logger)
    let orchestrator: any Orchestrator =
        mode == .async
        ? EventDrivenOrchestrator(
            bus: bus, agents: agents, stageHandlers: stages, defaultSymbols: ["AAPL", "MSFT", "GOOGL"],
            iterationIDPrefix: "t", logger: logger)
        : SequentialOrchestrator(
            bus: bus, agents: agents, stageHandlers: stages, defaultSymbols: ["AAPL", "MSFT", "GOOGL"],
            iterationIDPrefix: "t", logger: logger)
    let loop = PipelineLoop(orchestrator: orchestrator, intervalSeconds: 60, logger: logger)
    let daemon = Daemon(
        pipeline: PipelineHost(bus: bus, orchestrator: orchestrator, loop: loop, agents: agents, journal: journal),
        stages: stages,
        configuration: configuration, logger: logger)
    let server = TradewireServer(daemon: daemon)
    try await server.bind()
    let group = ServiceGroup(services: [server], logger: logger)
    daemon.onShutdownRequest { _ in Task { await group.triggerGracefulShutdown() } }
    let running = Task { try await group.run() }
    do {
        try await body(path, daemon)
    } catch {
        await group.triggerGracefulShutdown()
        _ = try? await running.value
        daemon.consumers.close()
        throw error
    }
    await group.triggerGracefulShutdown()
    _ = try? await running.value
    daemon.consumers.close()
}

/// Sends raw lines on a fresh connection; returns the parsed answer lines to a final ping
/// (id "end"), so a test also sees that nothing was answered for notifications.
/// `expecting` waits for that many answers besides the final ping (answers may come in any order).
func exchange(_ path: String, _ lines: [String], expecting: Int? = nil) throws -> [JSONValue] {
    let socket = try LineSocket(path: path)
    socket.setReadTimeout(seconds: 10)
    for line in lines { socket.write(Array(line.utf8) + [10]) }
    socket.write(Array(#"{"jsonrpc":"2.0","id":"end","method":"ping"}"#.utf8) + [10])
    var answers: [JSONValue] = []
    var sawEnd = false
    while let line = socket.readLine() {
        guard let value = try? JSONParser.parse(line) else { continue }
        if value["id"] == "end" { sawEnd = true } else { answers.append(value) }
        if sawEnd && answers.count >= (expecting ?? 0) { return answers }
    }
    return answers
}

extension JSONValue {
    var errorCode: Int? { self["error"]?["code"]?.intValue }
    var errorType: String? { self["error"]?["data"]?["type"]?.stringValue }
}

/// The repository root (for the built binaries).
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

/// Runs blocking work on its own thread (never on the cooperative pool, which it would starve).
func onThread<T: Sendable>(_ work: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread.detachNewThread { continuation.resume(returning: work()) }
    }
}
