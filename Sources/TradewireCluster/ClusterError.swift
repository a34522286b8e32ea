import PostgresNIO

/// A cluster failure, with a message for the operator.
public struct ClusterError: Error, Sendable, CustomStringConvertible, Equatable {
    public enum Kind: Sendable, Equatable {
        /// The database cannot be reached (or did not answer in time): nothing was applied
        /// that the caller was told about; a retry with the same batch key is safe.
        case unavailable
        /// A leader append carried an epoch that no longer holds the lease: refused.
        case fenced
        /// The connection string cannot be used.
        case badConnectionString
        /// The database holds a newer schema than this build knows, or is not a tradewire one.
        case incompatible
        /// Another live node already uses this node id.
        case duplicateNode
        /// The database refused a statement.
        case database
        /// A call handed to another node got no answer before its deadline.
        case timedOut
        /// Too many handed-off calls wait already, or too many consumers exist: nothing was
        /// recorded.
        case overloaded
        /// The consumer named does not exist (it was deleted).
        case notFound
    }

    public var kind: Kind
    public var message: String

    public init(_ kind: Kind, _ message: String) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }

    /// SQLSTATE raised by `tw_append` when a leader's epoch no longer holds the lease.
    static let fencedSQLState = "TW001"

    /// Maps a PostgresNIO failure: a server error keeps its SQLSTATE and message, anything
    /// else (refused, closed, timed out) is `.unavailable`.
    static func from(_ error: any Error, while action: String) -> ClusterError {
        if let error = error as? ClusterError { return error }
        if let error = error as? PSQLError, error.code == .server, let info = error.serverInfo {
            let state = info[.sqlState] ?? "?"
            let message = info[.message] ?? "\(error)"
            switch state {
            case fencedSQLState: return ClusterError(.fenced, "\(action): \(message)")
            case ClusterConsumerSchema.unknownConsumerSQLState: return ClusterError(.notFound, message)
            case ClusterConsumerSchema.tooManyConsumersSQLState: return ClusterError(.overloaded, message)
            default: break
            }
            return ClusterError(.database, "\(action): \(message) (SQLSTATE \(state))")
        }
        return ClusterError(
            .unavailable, "\(action): the cluster database cannot be reached (\(String(reflecting: error)))")
    }
}
