import Foundation
import Testing

@testable import TradewireServer

#if canImport(Glibc)
    import Glibc
#endif

@Suite struct SocketFileTests {
    @Test func theDefaultDirectoryIsCreatedPrivateAndMustStayPrivate() throws {
        let directory = "/tmp/twsf-\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
        defer { rmdir(directory) }
        try SocketFile.prepare(directory + "/s.sock", defaultDirectory: directory)
        var info = stat()
        #expect(lstat(directory, &info) == 0 && info.st_mode & 0o777 == 0o700)
        chmod(directory, 0o755)
        #expect(throws: SocketFileError.self) {
            try SocketFile.prepare(directory + "/s.sock", defaultDirectory: directory)
        }
    }

    @Test func overlongPathsAreRefused() {
        #expect(throws: SocketFileError.self) {
            try SocketFile.prepare("/tmp/" + String(repeating: "x", count: 120), defaultDirectory: "/nowhere")
        }
    }
}
