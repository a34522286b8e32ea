import Foundation
import Logging
import Synchronization
import TradewireCluster

/// A private PostgreSQL server for one test: `scripts/pg-server.sh` on a fresh copy of an
/// initdb'd template (made once per machine and PostgreSQL version), a free port and a short
/// socket directory; always stopped by ``stop()``, and by the script's watchdog should the
/// test process die first.
final class TestPostgres: Sendable {
    let directory: String
    let port: Int

    /// libpq key=value form (what `--cluster` takes).
    var connectionString: String { "host=\(directory) port=\(port) user=postgres dbname=postgres" }
    var info: ClusterConnectionInfo { try! ClusterConnectionInfo(parsing: connectionString) }

    static let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().path
    static var script: String { repositoryRoot + "/scripts/pg-server.sh" }

    private init(directory: String, port: Int) {
        self.directory = directory
        self.port = port
    }

    static func start() throws -> TestPostgres {
        let template = try Self.template()
        let directory = "/tmp/twpg-\(UUID().uuidString.prefix(8).lowercased())"
        let port = try freePort()
        try run(
            [script, "start", directory, String(port), String(getpid())], environment: ["PG_TEMPLATE": template])
        return TestPostgres(directory: directory, port: port)
    }

    /// Stops the server and removes its directory.
    func stop() {
        _ = try? Self.run([Self.script, "stop", directory])
        try? FileManager.default.removeItem(atPath: directory)
    }

    /// Runs SQL through psql (as another client would), returning its unaligned output.
    @discardableResult
    func psql(_ sql: String) throws -> String {
        try Self.run(["psql", "-X", "-q", "-At", "-h", directory, "-p", String(port), "-U", "postgres", "-c", sql])
    }

    /// A pool on this server.
    func database(label: String = "test") -> ClusterDatabase {
        var logger = Logger(label: "tradewire.test.\(label)")
        // TW_TEST_PG_LOG=debug shows the pool's and the journal's logs.
        logger.logLevel =
            ProcessInfo.processInfo.environment["TW_TEST_PG_LOG"].flatMap { Logger.Level(rawValue: $0) } ?? .critical
        return ClusterDatabase(info: info, logger: logger)
    }

    private static let templateLock = Mutex<String?>(nil)

    private static func template() throws -> String {
        try templateLock.withLock { made in
            if let made { return made }
            let version =
                (try? String(contentsOfFile: "/usr/share/postgresql-common/supported_versions", encoding: .utf8))
                .map { $0.filter(\.isNumber) } ?? "pg"
            let path = "/tmp/tw-pgtemplate-\(getuid())-\(version)"
            if !FileManager.default.fileExists(atPath: path + "/data/PG_VERSION") {
                let staging = path + ".staging-\(getpid())"
                try run([script, "initdb", staging])
                try? FileManager.default.removeItem(atPath: path)
                try FileManager.default.moveItem(atPath: staging, toPath: path)
            }
            made = path + "/data"
            return path + "/data"
        }
    }

    private static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { throw TestPostgresError("socket() failed") }
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { pointer in
                bind(fd, pointer, length) == 0 && getsockname(fd, pointer, &length) == 0
            }
        }
        guard bound else { throw TestPostgresError("bind() failed") }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    /// Runs a program to its end (posix_spawn and waitpid: Foundation's `Process` left a
    /// finished child unreaped here, so its wait never returned), capturing stdout and stderr.
    @discardableResult
    static func run(_ arguments: [String], environment: [String: String] = [:]) throws -> String {
        let output = FileManager.default.temporaryDirectory.appendingPathComponent("twpg-\(UUID().uuidString).out").path
        let errors = output + ".err"
        defer {
            unlink(output)
            unlink(errors)
        }
        let shell = ["/bin/sh", "-c", #""$@" >"$TW_OUT" 2>"$TW_ERR" </dev/null"#, "sh"] + arguments
        var env = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        env["TW_OUT"] = output
        env["TW_ERR"] = errors
        let argv = shell.map { strdup($0) } + [nil]
        let envp = env.map { strdup("\($0.key)=\($0.value)") } + [nil]
        defer {
            for pointer in argv { free(pointer) }
            for pointer in envp { free(pointer) }
        }
        var pid = pid_t()
        let spawned = posix_spawn(&pid, "/bin/sh", nil, nil, argv, envp)
        guard spawned == 0 else { throw TestPostgresError("posix_spawn failed: \(spawned)") }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let out = (try? String(contentsOfFile: output, encoding: .utf8)) ?? ""
        let err = (try? String(contentsOfFile: errors, encoding: .utf8)) ?? ""
        let exited = status & 0x7f == 0
        let code = (status >> 8) & 0xff
        guard exited && code == 0 else {
            throw TestPostgresError("\(arguments.joined(separator: " ")) failed (status \(status)): \(err)")
        }
        return out.trimmingCharacters(in: .whitespacesAndNewlines)
    }
}

struct TestPostgresError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

/// Runs `body` with a fresh server, stopped afterwards whatever happens.
func withPostgres<T>(_ body: (TestPostgres) async throws -> T) async throws -> T {
    let server = try TestPostgres.start()
    do {
        let result = try await body(server)
        server.stop()
        return result
    } catch {
        server.stop()
        throw error
    }
}
