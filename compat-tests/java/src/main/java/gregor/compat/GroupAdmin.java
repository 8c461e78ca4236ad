package gregor.compat;

import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.TimeUnit;

import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.GroupListing;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;

/**
 * Java AdminClient's view of one consumer group, as JSON lines on stdout.
 *
 * <p>Usage: {@code GroupAdmin BOOTSTRAP GROUP}. Prints {@code group} (one
 * per group from listGroups: {@code group}, {@code type}, {@code protocol},
 * {@code state}), {@code describe} (describeConsumerGroups: {@code state},
 * {@code assignor}, {@code simple}, {@code members} with {@code member},
 * {@code instance}, {@code client}, {@code host}, {@code assignment} as
 * "topic:partition" strings) and {@code offsets} (listConsumerGroupOffsets:
 * "topic:partition" to {@code offset} and {@code metadata}). Exits non-zero
 * if a call fails.
 */
public final class GroupAdmin {
    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            System.err.println("usage: GroupAdmin BOOTSTRAP GROUP");
            System.exit(2);
        }
        String group = args[1];
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, args[0]);
        ap.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 30000);
        try (Admin admin = Admin.create(ap)) {
            Collection<GroupListing> groups = admin.listGroups().all().get(30, TimeUnit.SECONDS);
            for (GroupListing g : groups) {
                Json.emit(Json.event("group").str("group", g.groupId())
                        .str("type", g.type().map(Object::toString).orElse(null))
                        .str("protocol", g.protocol())
                        .str("state", g.groupState().map(Object::toString).orElse(null)));
            }

            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group))
                    .describedGroups().get(group).get(30, TimeUnit.SECONDS);
            StringBuilder members = new StringBuilder("[");
            boolean first = true;
            for (MemberDescription m : d.members()) {
                if (!first) {
                    members.append(',');
                }
                first = false;
                List<String> parts = m.assignment().topicPartitions().stream()
                        .map(tp -> tp.topic() + ":" + tp.partition()).sorted().toList();
                Json mj = new Json().str("member", m.consumerId())
                        .str("instance", m.groupInstanceId().orElse(null))
                        .str("client", m.clientId()).str("host", m.host())
                        .strs("assignment", parts);
                members.append(mj);
            }
            members.append(']');
            Json.emit(Json.event("describe").str("group", d.groupId())
                    .str("state", d.groupState().toString())
                    .str("type", d.type().toString())
                    .str("assignor", d.partitionAssignor())
                    .bool("simple", d.isSimpleConsumerGroup())
                    .raw("members", members.toString()));

            Map<TopicPartition, OffsetAndMetadata> offsets = admin.listConsumerGroupOffsets(group)
                    .partitionsToOffsetAndMetadata().get(30, TimeUnit.SECONDS);
            StringBuilder om = new StringBuilder("{");
            first = true;
            for (Map.Entry<TopicPartition, OffsetAndMetadata> e : offsets.entrySet()) {
                if (!first) {
                    om.append(',');
                }
                first = false;
                Json.quote(om, e.getKey().topic() + ":" + e.getKey().partition());
                om.append(':');
                OffsetAndMetadata v = e.getValue();
                om.append(v == null ? "null"
                        : new Json().num("offset", v.offset()).str("metadata", v.metadata()).toString());
            }
            om.append('}');
            Json.emit(Json.event("offsets").str("group", group).raw("offsets", om.toString()));
        }
    }
}
