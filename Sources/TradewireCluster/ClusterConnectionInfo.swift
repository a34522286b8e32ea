import Foundation
import PostgresNIO

/// Where the cluster's PostgreSQL is: `--cluster CONNINFO`, as a URI
/// (`postgresql://user:secret@db.example:5432/tradewire`, `postgresql:///tw?host=/run/pg`)
/// or as libpq's key=value form (`host=/run/pg port=5432 dbname=tradewire user=tw`).
///
/// A host that starts with `/` is a socket directory (the socket is `HOST/.s.PGSQL.PORT`).
/// Defaults as libpq: host `/var/run/postgresql`, port 5432, user `$USER`, database = user.
public struct ClusterConnectionInfo: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    public init(host: String, port: Int = 5432, user: String, password: String? = nil, database: String? = nil) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database ?? user
    }

    /// Parses a URI or a key=value string; unknown keys are refused (a typo would otherwise
    /// connect somewhere unexpected).
    public init(parsing text: String, environment: [String: String] = ProcessInfo.processInfo.environment)
        throws(ClusterError)
    {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard !trimmed.isEmpty else { throw ClusterError(.badConnectionString, "--cluster: empty connection string") }
        var fields: [String: String]
        if trimmed.hasPrefix("postgresql://") || trimmed.hasPrefix("postgres://") {
            fields = try Self.uriFields(trimmed)
        } else {
            fields = try Self.keywordFields(trimmed)
        }
        let known: Set<String> = ["host", "port", "user", "password", "dbname", "connect_timeout", "application_name"]
        if let unknown = fields.keys.sorted().first(where: { !known.contains($0) }) {
            throw ClusterError(.badConnectionString, "--cluster: unknown parameter '\(unknown)'")
        }
        let portText = fields["port"] ?? "5432"
        guard let port = Int(portText), (1...65535).contains(port) else {
            throw ClusterError(.badConnectionString, "--cluster: port must be 1…65535, got '\(portText)'")
        }
        let user = fields["user"] ?? environment["USER"] ?? "postgres"
        let host = fields["host"].flatMap { $0.isEmpty ? nil : $0 } ?? "/var/run/postgresql"
        if host.hasPrefix("/") && host.utf8.count + 20 > 107 {
            throw ClusterError(.badConnectionString, "--cluster: socket directory too long: \(host)")
        }
        self.init(host: host, port: port, user: user, password: fields["password"], database: fields["dbname"])
    }

    /// True when `host` names a socket directory.
    public var isUnixSocket: Bool { host.hasPrefix("/") }

    /// The socket file for a socket-directory host.
    public var socketPath: String { "\(host)/.s.PGSQL.\(port)" }

    /// The location without the password (for logs and `get_status`).
    public var description: String {
        isUnixSocket
            ? "postgresql://\(user)@/\(database)?host=\(host)&port=\(port)"
            : "postgresql://\(user)@\(host):\(port)/\(database)"
    }

    /// The client configuration (TLS off: a socket or a trusted network).
    var clientConfiguration: PostgresClient.Configuration {
        var configuration =
            isUnixSocket
            ? PostgresClient.Configuration(
                unixSocketPath: socketPath, username: user, password: password, database: database)
            : PostgresClient.Configuration(
                host: host, port: port, username: user, password: password, database: database, tls: .disable)
        configuration.options.connectTimeout = .seconds(3)
        configuration.options.keepAliveBehavior = .init(frequency: .seconds(5))
        configuration.options.maximumConnections = 8
        // Server side: a dead client's backend (and what it holds) goes within seconds, not hours.
        configuration.options.additionalStartupParameters = [
            ("tcp_keepalives_idle", "5"), ("tcp_keepalives_interval", "2"), ("tcp_keepalives_count", "3"),
            ("idle_in_transaction_session_timeout", "30000"), ("application_name", "tradewired"),
        ]
        return configuration
    }

    private static func uriFields(_ text: String) throws(ClusterError) -> [String: String] {
        guard let components = URLComponents(string: text) else {
            throw ClusterError(.badConnectionString, "--cluster: not a valid URI")
        }
        var fields: [String: String] = [:]
        if let user = components.user, !user.isEmpty { fields["user"] = user.removingPercentEncoding ?? user }
        if let password = components.password { fields["password"] = password.removingPercentEncoding ?? password }
        if let host = components.host, !host.isEmpty { fields["host"] = host.removingPercentEncoding ?? host }
        if let port = components.port { fields["port"] = String(port) }
        let path = components.path.hasPrefix("/") ? String(components.path.dropFirst()) : components.path
        if !path.isEmpty { fields["dbname"] = path.removingPercentEncoding ?? path }
        for item in components.queryItems ?? [] {
            fields[item.name] = item.value ?? ""
        }
        return fields
    }

    /// libpq's `key=value key='quoted \' value'` form.
    private static func keywordFields(_ text: String) throws(ClusterError) -> [String: String] {
        var fields: [String: String] = [:]
        var rest = Substring(text)
        while true {
            rest = rest.drop { $0 == " " || $0 == "\t" }
            guard !rest.isEmpty else { break }
            guard let equals = rest.firstIndex(of: "=") else {
                throw ClusterError(.badConnectionString, "--cluster: expected key=value at '\(rest)'")
            }
            let key = rest[..<equals].trimmingCharacters(in: .whitespaces)
            rest = rest[rest.index(after: equals)...].drop { $0 == " " }
            var value = ""
            if rest.first == "'" {
                rest = rest.dropFirst()
                var closed = false
                while let character = rest.first {
                    rest = rest.dropFirst()
                    if character == "\\", let next = rest.first {
                        value.append(next)
                        rest = rest.dropFirst()
                    } else if character == "'" {
                        closed = true
                        break
                    } else {
                        value.append(character)
                    }
                }
                guard closed else { throw ClusterError(.badConnectionString, "--cluster: unterminated quote") }
            } else {
                let end = rest.firstIndex { $0 == " " || $0 == "\t" } ?? rest.endIndex
                value = String(rest[..<end])
                rest = rest[end...]
            }
            guard !key.isEmpty else { throw ClusterError(.badConnectionString, "--cluster: empty key") }
            fields[key] = value
        }
        return fields
    }
}
