// Answers questions about the test cluster of scripts/realkafka-cluster.sh
// with Kafka's own admin client (the jars fetched there), so the answer does
// not depend on the client under test:
//
//   java -cp '.cache/realkafka/libs/*' scripts/realkafka/ClusterInfo.java BOOTSTRAP leader TOPIC PARTITION
//   java -cp '.cache/realkafka/libs/*' scripts/realkafka/ClusterInfo.java BOOTSTRAP txn-coordinator TRANSACTIONAL_ID
//
// Each prints one node id on standard output.
import java.util.List;
import java.util.Map;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;

public class ClusterInfo {
    public static void main(String[] args) throws Exception {
        if (args.length < 3) {
            System.err.println("usage: ClusterInfo BOOTSTRAP leader TOPIC PARTITION | BOOTSTRAP txn-coordinator TRANSACTIONAL_ID");
            System.exit(2);
        }
        Map<String, Object> conf = Map.of(
                AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0],
                AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        try (Admin admin = Admin.create(conf)) {
            switch (args[1]) {
                case "leader" -> {
                    int p = Integer.parseInt(args[3]);
                    var d = admin.describeTopics(List.of(args[2])).allTopicNames().get().get(args[2]);
                    var leader = d.partitions().get(p).leader();
                    if (leader == null) {
                        System.err.println(args[2] + "[" + p + "] has no leader now");
                        System.exit(1);
                    }
                    System.out.println(leader.id());
                }
                case "txn-coordinator" -> System.out.println(
                        admin.describeTransactions(List.of(args[2])).description(args[2]).get().coordinatorId());
                default -> {
                    System.err.println("unknown question " + args[1] + ": leader or txn-coordinator");
                    System.exit(2);
                }
            }
        }
    }
}
