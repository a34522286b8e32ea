import Testing
import TradewireCluster

struct ClusterConnectionInfoTests {
    @Test func uriAndKeywordFormsMeanTheSame() throws {
        let uri = try ClusterConnectionInfo(parsing: "postgresql://tw:s%40cret@db.example:6543/trading")
        #expect(
            uri
                == ClusterConnectionInfo(
                    host: "db.example", port: 6543, user: "tw", password: "s@cret", database: "trading"))
        let keywords = try ClusterConnectionInfo(
            parsing: "host=db.example port=6543 user=tw password='s@cret' dbname=trading")
        #expect(keywords == uri)
        #expect(!uri.description.contains("s@cret"))
    }

    @Test func aSocketDirectoryAndDefaults() throws {
        let info = try ClusterConnectionInfo(
            parsing: "postgresql:///tw?host=/run/pg&port=5433&user=me", environment: [:])
        #expect(info.isUnixSocket)
        #expect(info.socketPath == "/run/pg/.s.PGSQL.5433")
        #expect(info.database == "tw")
        let defaults = try ClusterConnectionInfo(parsing: "dbname=tw", environment: ["USER": "alice"])
        #expect(defaults.host == "/var/run/postgresql" && defaults.port == 5432 && defaults.user == "alice")
        let quoted = try ClusterConnectionInfo(parsing: #"user=x password='it\'s me' dbname=d"#, environment: [:])
        #expect(quoted.password == "it's me")
    }

    @Test(arguments: [
        "", "host=x port=0", "host=x port=99999", "host=x port=abc", "hots=x", "password='open", "=x",
        "postgresql://h/db?sslmode=require", "justtext",
    ])
    func badStringsAreRefusedWithAReason(_ text: String) {
        #expect(throws: ClusterError.self) { try ClusterConnectionInfo(parsing: text, environment: [:]) }
    }
}
