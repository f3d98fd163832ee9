use crate::code_enum;
use serde::{Deserialize, Serialize};

code_enum!(Role {
    Admin = "admin", "系统管理员", "administrator",
    CustomerManager = "customer_manager", "客户经理", "customer manager",
    Marketer = "marketer", "营销人员", "marketer",
    ServiceAgent = "service_agent", "客服", "service agent",
    Collector = "collector", "催费员", "collector",
    Analyst = "analyst", "分析师", "analyst",
    BranchHead = "branch_head", "网点负责人", "branch head",
});

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Staff {
    pub external_id: String,
    pub name: String,
    pub role: Role,
    pub branch: Option<String>,
}
