import Logging
import PostgresNIO
import Synchronization

/// The cluster's connection pools (PostgresNIO's `PostgresClient`s, kept running by a task
/// of their own), and the deadline every statement runs under: a blackholed link fails a
/// call in time instead of hanging it. A second, smaller pool has `synchronous_commit` off
/// for its whole sessions: a statement whose commit need not wait for the disk costs one
/// round trip there (``queryWithoutFlush(_:_:timeout:)``).
public final class ClusterDatabase: Sendable {
    public let info: ClusterConnectionInfo
    let client: PostgresClient
    let unflushedClient: PostgresClient
    let logger: Logger
    private let runner: Mutex<Task<Void, Never>?>
    /// Connections of the pool without flushes.
    static let unflushedConnections = 4

    /// Connects lazily: the first statement opens the first connection.
    public init(info: ClusterConnectionInfo, logger: Logger) {
        self.info = info
        self.logger = logger
        let client = PostgresClient(configuration: info.clientConfiguration, backgroundLogger: logger)
        var unflushedConfiguration = info.clientConfiguration
        unflushedConfiguration.options.maximumConnections = Self.unflushedConnections
        unflushedConfiguration.options.additionalStartupParameters.append(("synchronous_commit", "off"))
        let unflushedClient = PostgresClient(configuration: unflushedConfiguration, backgroundLogger: logger)
        self.client = client
        self.unflushedClient = unflushedClient
        self.runner = Mutex(
            Task {
                await withDiscardingTaskGroup { group in
                    group.addTask { await client.run() }
                    group.addTask { await unflushedClient.run() }
                }
            })
    }

    /// Closes every connection (statements still running fail).
    public func close() {
        let task = runner.withLock { task in
            defer { task = nil }
            return task
        }
        task?.cancel()
    }

    deinit { close() }

    /// Runs `body` on a pooled connection, failing with `.unavailable` after `timeout`.
    /// `flushed: false`: on a connection of the pool whose commits do not wait for the disk.
    public func withConnection<Result: Sendable>(
        _ action: String, timeout: Duration = .seconds(5), flushed: Bool = true,
        _ body: @escaping @Sendable (PostgresConnection) async throws -> Result
    ) async throws(ClusterError) -> Result {
        let client = flushed ? self.client : unflushedClient
        let held = HeldConnection()
        do {
            return try await Deadline.run(timeout, action: action, onTimeout: { held.close() }) {
                try await client.withConnection { connection in
                    held.hold(connection)
                    defer { held.hold(nil) }
                    return try await body(connection)
                }
            }
        } catch {
            throw ClusterError.from(error, while: action)
        }
    }

    /// Runs one statement and collects its rows.
    public func query(_ query: PostgresQuery, _ action: String, timeout: Duration = .seconds(5))
        async throws(ClusterError)
        -> [PostgresRow]
    {
        let logger = self.logger
        return try await withConnection(action, timeout: timeout) { connection in
            try await connection.query(query, logger: logger).collect()
        }
    }
}

extension ClusterDatabase {
    /// Runs one statement whose commit does not wait for the disk (`synchronous_commit =
    /// off`, one round trip): for rows a database crash may lose without harm.
    public func queryWithoutFlush(_ query: PostgresQuery, _ action: String, timeout: Duration = .seconds(5))
        async throws(ClusterError) -> [PostgresRow]
    {
        let logger = self.logger
        return try await withConnection(action, timeout: timeout, flushed: false) { connection in
            try await connection.query(query, logger: logger).collect()
        }
    }
}

/// Races work against a clock without waiting for the work to notice cancellation (a query
/// on a blackholed socket may never return): the caller gets `.unavailable` at the deadline
/// and the work is cancelled and left to finish on its own.
enum Deadline {
    static func run<Result: Sendable>(
        _ timeout: Duration, action: String, onTimeout: @escaping @Sendable () -> Void = {},
        _ work: @escaping @Sendable () async throws -> Result
    ) async throws -> Result {
        let box = Mutex<CheckedContinuation<Result, any Error>?>(nil)
        let resume: @Sendable (Swift.Result<Result, any Error>) -> Void = { result in
            box.withLock { continuation in
                continuation?.resume(with: result)
                continuation = nil
            }
        }
        var tasks: [Task<Void, Never>] = []
        defer { for task in tasks { task.cancel() } }
        return try await withCheckedThrowingContinuation { continuation in
            box.withLock { $0 = continuation }
            tasks.append(
                Task {
                    do { resume(.success(try await work())) } catch { resume(.failure(error)) }
                })
            tasks.append(
                Task {
                    try? await Task.sleep(for: timeout)
                    if Task.isCancelled { return }
                    onTimeout()
                    resume(
                        .failure(
                            ClusterError(.unavailable, "\(action): no answer from the cluster database in \(timeout)")))
                })
        }
    }
}

/// The connection a statement runs on, closed when its deadline passes: a query that
/// never answers (a blackholed or half-open link) would otherwise keep its connection
/// out of the pool for good, and enough of them starve the pool after the link heals.
final class HeldConnection: Sendable {
    private let connection = Mutex<PostgresConnection?>(nil)

    func hold(_ connection: PostgresConnection?) {
        self.connection.withLock { $0 = connection }
    }

    func close() {
        guard let connection = connection.withLock({ $0 }) else { return }
        Task { try? await connection.close() }
    }
}
